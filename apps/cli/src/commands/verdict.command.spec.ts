import { demoSummary, verdictSentence, type VerdictCell, type VerdictView } from './verdict.command';

const cell = (over: Partial<VerdictCell>): VerdictCell => ({
  mean: 0.85,
  std: 0.002,
  n: 2,
  seeds: [0, 1],
  layer: 'out_2',
  noiseLevel: 4,
  method: 'ddpm',
  modelName: 'ddpm-b16',
  protocolKey: 'pool=avg4;noise=fixed:0;probe=fast;ep=10;bs=128;lr=0.001;std=1;n=10000/2000;seed=0',
  ...over,
});

const verdict = (over: Partial<VerdictView> = {}): VerdictView => ({
  sweepId: '0b6c2a4e-7d1f-4c55-9a3e-2f8e1d0c9b7a',
  best: cell({}),
  untrained: cell({ mean: 0.83, std: null, n: 1, seeds: [0], layer: 'out_5', modelName: 'ddpm-b16' }),
  pixels: { accuracy: 0.835, featureDim: 784, protocolKey: cell({}).protocolKey },
  margins: { pixels: 0.015, untrained: 0.02 },
  ...over,
});

describe('demoSummary', () => {
  it('builds .demo/summary.json from a verdict: exactly the documented keys, accuracies as fractions', () => {
    const s = demoSummary(verdict(), 612.4);
    expect(s).toEqual({
      seconds: 612,
      sweepId: '0b6c2a4e-7d1f-4c55-9a3e-2f8e1d0c9b7a',
      best: { model: 'ddpm-b16', layer: 'out_2', noise: 4, accuracy: 0.85, std: 0.002, seeds: [0, 1] },
      baselines: { pixels: { accuracy: 0.835 }, untrained: { accuracy: 0.83, layer: 'out_5', noise: 4 } },
      margins: { pixels: 0.015, untrained: 0.02 },
    });
    // The exact shape, key for key (the demo's contract with scripts).
    expect(Object.keys(s)).toEqual(['seconds', 'sweepId', 'best', 'baselines', 'margins']);
    expect(Object.keys(s.best ?? {})).toEqual(['model', 'layer', 'noise', 'accuracy', 'std', 'seeds']);
    expect(Object.keys(s.baselines)).toEqual(['pixels', 'untrained']);
    expect(Object.keys(s.baselines.untrained ?? {})).toEqual(['accuracy', 'layer', 'noise']);
    expect(Object.keys(s.margins)).toEqual(['pixels', 'untrained']);
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
  });

  it('rounds the float noise of means and differences to 6 decimals', () => {
    const s = demoSummary(verdict({ best: cell({ mean: 0.7250000000000001, std: 0.002357022603955056 }), margins: { pixels: -0.004999999999999893, untrained: null } }), 0);
    expect([s.best?.accuracy, s.best?.std, s.margins.pixels]).toEqual([0.725, 0.002357, -0.005]);
  });

  it('keeps missing parts null (no trained result, no baselines) rather than inventing them', () => {
    const s = demoSummary(verdict({ best: null, untrained: null, pixels: null, margins: { pixels: null, untrained: null } }), 3);
    expect(s).toEqual({ seconds: 3, sweepId: verdict().sweepId, best: null, baselines: { pixels: null, untrained: null }, margins: { pixels: null, untrained: null } });
  });
});

describe('verdictSentence', () => {
  it('names the best trained cell, both baselines with the control\'s cell, and both margins', () => {
    expect(verdictSentence(verdict())).toBe(
      "Best trained cell: ddpm-b16 out_2 t=4, 85.00 % ± 0.20 (mean of 2 seeds) beats raw pixels (83.50 %) by +1.50 points and beats the untrained network's best cell out_5 t=4 (83.00 %) by +2.00 points; same probe protocol.",
    );
  });

  it('adds the best cell fine-tuned, when it was, apart from the linear comparison', () => {
    const v = verdict({ best: cell({ finetuned: { mean: 0.9, std: null, n: 1, protocolKey: 'probe=finetune', labels: 100 } }) });
    expect(verdictSentence(v)).toBe(
      "Best trained cell: ddpm-b16 out_2 t=4, 85.00 % ± 0.20 (mean of 2 seeds) beats raw pixels (83.50 %) by +1.50 points and beats the untrained network's best cell out_5 t=4 (83.00 %) by +2.00 points; same probe protocol. Fine-tuned end to end at that cell (100 labels, 1 seed): 90.00 %, +5.00 points against its linear probe.",
    );
    expect(verdictSentence(verdict({ best: cell({ finetuned: null }) }))).not.toContain('Fine-tuned');
  });

  it('says when the trained cell loses, or wins by less than a point or within twice the spread', () => {
    const lost = verdictSentence(verdict({ margins: { pixels: -0.004, untrained: 0.005 }, pixels: { accuracy: 0.854, featureDim: 784, protocolKey: '' } }));
    expect(lost).toContain('does not beat raw pixels (85.40 %): -0.40 points');
    expect(lost).toContain('by +0.50 points (less than 1 point or not above twice the spread)');
    const noisy = verdictSentence(verdict({ best: cell({ std: 0.01 }) }));
    expect(noisy).toContain('raw pixels (83.50 %) by +1.50 points (less than 1 point or not above twice the spread)');
  });

  it('has no verdict before a trained result', () => {
    expect(verdictSentence(verdict({ best: null }))).toMatch(/no trained model has a probe result yet/);
  });
});
