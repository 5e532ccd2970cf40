import type { ProgressView } from '@ddae/contracts';
import { renderProgress } from './progress.command';

const run = (over: Partial<ProgressView['runs'][number]>): ProgressView['runs'][number] => ({
  runId: 'r', run: 'ddpm-tiny-s0', model: 'ddpm-tiny', seed: 0, method: 'ddpm', status: 'SUCCEEDED', steps: 30, stepsDone: 20, every: 10, stoppedEarlyAt: null, points: [], ...over,
});

describe('ddae progress', () => {
  it('shows accuracy against step per run, every cell, the best step and the early stop', () => {
    const text = renderProgress({
      sweepId: 's',
      runs: [
        run({
          stoppedEarlyAt: 20,
          points: [
            { step: 10, accuracy: 0.5, device: 'cpu', cells: [{ layer: 'out_1', noiseLevel: 5, accuracy: 0.5, featureDim: 8 }, { layer: 'out_2', noiseLevel: 5, accuracy: 0.25, featureDim: 8 }] },
            { step: 20, accuracy: 0.505, device: 'cpu', cells: [{ layer: 'out_1', noiseLevel: 5, accuracy: 0.505, featureDim: 8 }, { layer: 'out_2', noiseLevel: 5, accuracy: 0.3, featureDim: 8 }] },
          ],
        }),
        run({ run: 'edm-tiny-s0', method: 'edm', status: 'RUNNING', stepsDone: 3 }),
        run({ run: 'plain-s0', every: null, stepsDone: 30 }),
      ],
    });
    expect(text.split('\n')).toEqual([
      'ddpm-tiny-s0  [SUCCEEDED]  steps 20/30  probed every 10 steps  stopped early at step 20 of 30 (the probe plateaued)',
      'step  best %   out_1 t=5 %  out_2 t=5 %',
      '----  -------  -----------  -----------',
      '  10  50.00    50.00        25.00',
      '  20  50.50 *  50.50        30.00',
      '',
      'edm-tiny-s0  [RUNNING]  steps 3/30  probed every 10 steps',
      '  (no probe yet)',
      '',
      'plain-s0  [SUCCEEDED]  steps 30/30  no probing during pretraining',
      '  (no probe yet)',
    ]);
    expect(renderProgress({ sweepId: 's', runs: [] })).toBe('sweep s: no trained runs');
  });
});
