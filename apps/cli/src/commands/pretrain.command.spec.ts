import path from 'node:path';
import { CliError } from '../api-client';
import { parseBackend, parseUNet, pretrainTaskFromArgs } from './pretrain.command';
import { probeSpecSchema, sweepSpecSchema } from '@ddae/contracts';
import { protocolFromArgs } from './probe.command';
import { sampleOptionsFromArgs } from './sample.command';

const base = { dataset: 'fashion-mnist', method: 'ddpm', unet: 'tiny', steps: '100', out: 'tmp/run' };

describe('pretrain arguments', () => {
  it('builds a full compute task with the documented defaults', async () => {
    const t = await pretrainTaskFromArgs(base);
    expect(t).toMatchObject({ kind: 'pretrain', method: 'ddpm', dataset: { name: 'fashion-mnist' }, steps: 100, batchSize: 64, learningRate: 2e-4, warmupSteps: 10, gradClip: 1, emaDecayCap: 0.9999, checkpointEvery: 100, seed: 0 });
    expect(t.unet).toEqual({ baseChannels: 8, channelMults: [1, 2], blocksPerLevel: 1, attentionResolutions: [], dropout: 0.1, groups: 4 });
    expect(t.checkpointDir).toBe(path.resolve('tmp/run'));
    expect(t.trainSize).toBeUndefined();
    expect((await pretrainTaskFromArgs({ ...base, method: undefined })).method).toBe('ddpm');
    const e = await pretrainTaskFromArgs({ ...base, method: 'edm', batch: '32', lr: '1e-3', warmup: '50', seed: '3', 'train-size': '2000', 'checkpoint-every': '25', 'data-dir': '/data' });
    expect(e).toMatchObject({ emaDecayCap: 0.9993, batchSize: 32, learningRate: 1e-3, warmupSteps: 50, seed: 3, trainSize: 2000, checkpointEvery: 25, dataset: { name: 'fashion-mnist', dir: '/data' } });
  });

  it('takes --image-size that every level halves (28 for a 3-level UNet) and leaves it out by default', async () => {
    expect((await pretrainTaskFromArgs({ ...base, unet: 'small', 'image-size': '28' })).imageSize).toBe(28);
    expect('imageSize' in (await pretrainTaskFromArgs(base))).toBe(false);
  });

  it('takes a DiT from --preset (with or without --backbone dit) or --dit, and a UNet from --preset or --unet', async () => {
    const dit = await pretrainTaskFromArgs({ ...base, unet: undefined, backbone: 'dit', preset: 'dit-tiny' });
    expect(dit.dit).toEqual({ depth: 4, width: 48, heads: 4, patch: 4, mlpRatio: 4 });
    expect(dit.unet).toBeUndefined();
    expect((await pretrainTaskFromArgs({ ...base, unet: undefined, preset: 'dit-small' })).dit).toMatchObject({ depth: 6, width: 96, patch: 2 });
    expect((await pretrainTaskFromArgs({ ...base, unet: undefined, dit: '{"depth":2,"width":32,"heads":4,"patch":2}' })).dit).toEqual({ depth: 2, width: 32, heads: 4, patch: 2, mlpRatio: 4 });
    const unet = await pretrainTaskFromArgs({ ...base, unet: undefined, preset: 'small', backbone: 'unet' });
    expect(unet.unet).toMatchObject({ baseChannels: 16 });
    expect(unet.dit).toBeUndefined();
    // Probing a DiT during pretraining: `all` is every block.
    const probed = await pretrainTaskFromArgs({ ...base, unet: undefined, preset: 'dit-tiny', 'probe-every': '25', 'probe-noise': '11' });
    expect(probed.progressProbe?.layers).toEqual(['blk_1', 'blk_2', 'blk_3', 'blk_4']);
    await expect(pretrainTaskFromArgs({ ...base, unet: undefined, preset: 'dit-tiny', 'probe-every': '25', 'probe-noise': '11', 'probe-layers': 'out_1' })).rejects.toThrow(/unknown layer "out_1" for this DiT; known: blk_1, blk_2, blk_3, blk_4/);
  });

  it('takes a JSON UNet and fills its defaults', async () => {
    expect(parseUNet('{"baseChannels":16,"channelMults":[1,2,2],"blocksPerLevel":1,"groups":8}')).toEqual({ baseChannels: 16, channelMults: [1, 2, 2], blocksPerLevel: 1, groups: 8, dropout: 0.1, attentionResolutions: [] });
  });

  it.each([
    [{ ...base, dataset: undefined }, /needs --dataset fashion-mnist\|mnist\|cifar10/],
    [{ ...base, dataset: 'imagenet' }, /got "imagenet"/],
    [{ ...base, method: 'vp' }, /--method must be one of ddpm\|edm/],
    [{ ...base, unet: undefined }, /needs --preset \(UNet tiny, small, base, reference; DiT dit-tiny, dit-small\) or --unet/],
    [{ ...base, unet: undefined, backbone: 'dit' }, /--backbone dit needs --preset dit-tiny\|dit-small or --dit/],
    [{ ...base, backbone: 'dit' }, /--backbone dit takes a DiT/],
    [{ ...base, unet: undefined, backbone: 'unet', preset: 'dit-tiny' }, /--backbone unet takes a UNet/],
    [{ ...base, backbone: 'vit' }, /--backbone must be unet or dit/],
    [{ ...base, preset: 'small' }, /either --preset or --unet/],
    [{ ...base, unet: undefined, preset: 'dit-huge' }, /--preset "dit-huge" is not a model preset: UNet tiny, small, base, reference; DiT dit-tiny, dit-small/],
    [{ ...base, unet: undefined, dit: '{"depth":2,"width":36,"heads":8,"patch":4}' }, /--dit: width 36 is not divisible by 8 heads/],
    [{ ...base, unet: undefined, dit: '{"depth":2,"width":32,"heads":4,"patch":3}' }, /--dit: patch 3 does not divide 32x32 images \(fashion-mnist images are padded to 32x32\)/],
    [{ ...base, unet: undefined, dit: '{"depth":2}' }, /--dit: width: .*e\.g\. --dit/],
    [{ ...base, unet: 'huge' }, /neither a preset/],
    [{ ...base, unet: '{baseChannels:16}' }, /not valid JSON/],
    [{ ...base, unet: '{"baseChannels":16}' }, /--unet: channelMults/],
    [{ ...base, steps: undefined }, /needs --steps/],
    [{ ...base, steps: '1.5' }, /--steps must be an integer in \[0, 1000000\]/],
    [{ ...base, steps: '-1' }, /--steps must be an integer in \[0, 1000000\]/],
    [{ ...base, lr: 'fast' }, /--lr must be a positive number, got "fast" \(e\.g\. --lr 2e-4\)/],
    [{ ...base, 'ema-cap': '2' }, /--ema-cap must be a number in \[0, 1\]/],
    [{ ...base, out: undefined }, /needs --out <dir>/],
    [{ ...base, unet: 'small', 'image-size': '30' }, /--image-size 30: the UNet's 3 levels must halve it exactly \(a multiple of 4\): use 28 or 32/],
    [{ ...base, 'image-size': '24' }, /--image-size must be an integer in \[28, 256\]/],
  ])('refuses bad arguments with a CliError naming the fix (%#)', async (args, message) => {
    await expect(pretrainTaskFromArgs(args)).rejects.toThrow(CliError);
    await expect(pretrainTaskFromArgs(args)).rejects.toThrow(message);
  });

  it('resolves probing during pretraining from --probe-every and its companions', async () => {
    expect((await pretrainTaskFromArgs(base)).progressProbe).toBeUndefined();
    const t = await pretrainTaskFromArgs({ ...base, 'probe-every': '25', 'probe-noise': '11,5,11', patience: '2' });
    expect(t.progressProbe).toEqual({
      every: 25,
      noiseLevels: [11, 5],
      layers: ['out_1', 'out_2', 'out_3', 'out_4'],
      protocol: { pooling: 'gap', noise: 'fixed', noiseSeed: 0, probe: 'fast', epochs: 5, batchSize: 128, learningRate: 1e-3, standardize: true, trainSize: 2000, testSize: 1000, probeSeed: 0 },
      earlyStop: { patience: 2, minDelta: 0.002 },
    });
    const e = await pretrainTaskFromArgs({ ...base, method: 'edm', 'probe-every': '10', 'probe-noise': '0.06', 'probe-layers': 'out_2,mid_1', 'probe-train-size': '500', 'probe-test-size': '200', 'probe-epochs': '2', 'probe-pooling': 'avg4', patience: '1', 'min-delta': '0.01' });
    expect(e.progressProbe).toMatchObject({ noiseLevels: [0.06], layers: ['out_2', 'mid_1'], protocol: { trainSize: 500, testSize: 200, epochs: 2, pooling: 'avg4' }, earlyStop: { patience: 1, minDelta: 0.01 } });
  });

  it.each([
    [{ ...base, 'probe-every': '0', 'probe-noise': '5' }, /--probe-every must be a positive integer/],
    [{ ...base, 'probe-every': '101', 'probe-noise': '5' }, /never probes a run of --steps 100/],
    [{ ...base, 'probe-every': '10' }, /needs --probe-noise/],
    [{ ...base, 'probe-every': '10', 'probe-noise': '5,2000' }, /--probe-noise must be an integer in \[0, 1000\]/],
    [{ ...base, 'probe-every': '10', 'probe-noise': '5', 'probe-layers': 'out_9' }, /unknown layer "out_9"/],
    [{ ...base, 'probe-every': '10', 'probe-noise': Array.from({ length: 17 }, (_, i) => i + 1).join(',') }, /exceed the small grid's limit of 64/],
    [{ ...base, 'probe-every': '10', 'probe-noise': '5', patience: '0' }, /--patience must be a positive integer/],
    [{ ...base, 'probe-every': '10', 'probe-noise': '5', 'min-delta': '0.01' }, /--min-delta needs --patience/],
    [{ ...base, patience: '3' }, /--patience needs --probe-every/],
    [{ ...base, 'probe-every': '10', 'probe-noise': '5', 'probe-pooling': 'max' }, /--probe-pooling must be one of gap, avg2, avg4/],
    [{ ...base, 'probe-pooling': 'avg4' }, /--probe-pooling needs --probe-every/],
  ])('refuses bad probing-during-pretraining arguments with a CliError naming the fix (%#)', async (args, message) => {
    await expect(pretrainTaskFromArgs(args)).rejects.toThrow(CliError);
    await expect(pretrainTaskFromArgs(args)).rejects.toThrow(message);
  });

  it('reads the backend from --backend, then DDAE_BACKEND', async () => {
    expect(parseBackend(undefined, {})).toBe('auto');
    expect(parseBackend(undefined, { DDAE_BACKEND: 'cpu' })).toBe('cpu');
    expect(parseBackend('wasm', { DDAE_BACKEND: 'cpu' })).toBe('wasm');
    expect(() => parseBackend('gpu', {})).toThrow(/--backend "gpu" is not one of auto/);
    expect(() => parseBackend(undefined, { DDAE_BACKEND: 'tpu' })).toThrow(/DDAE_BACKEND "tpu"/);
  });
});

describe('sample arguments', () => {
  it('has defaults and refuses bad values', async () => {
    expect(sampleOptionsFromArgs({ checkpoint: 'tmp/run', out: 'grid.png' })).toEqual({ checkpoint: 'tmp/run', n: 64, steps: undefined, seed: 0, batch: 64, eta: undefined, out: 'grid.png', weights: 'ema' });
    expect(sampleOptionsFromArgs({ checkpoint: 'x', out: 'g.png', weights: 'raw' }).weights).toBe('raw');
    expect(() => sampleOptionsFromArgs({ checkpoint: 'x', out: 'g.png', weights: 'last' })).toThrow(/--weights must be ema/);
    expect(() => sampleOptionsFromArgs({})).toThrow(/needs --checkpoint/);
    // No file name is made up: a PNG goes only where --out says.
    expect(() => sampleOptionsFromArgs({ checkpoint: 'x' })).toThrow(/needs --out FILE/);
    expect(() => sampleOptionsFromArgs({ checkpoint: 'x', out: 'g.png', n: '0' })).toThrow(/--n must be a positive integer/);
    expect(() => sampleOptionsFromArgs({ checkpoint: 'x', out: 'g.png', eta: '3' })).toThrow(/--eta/);
  });
});

describe('inline defaults come from the spec schema and planSweep', () => {
  const planned = async (method: 'ddpm' | 'edm', steps: number) =>
    (await import('@ddae/sweeps')).planSweep(sweepSpecSchema.parse({ name: 'x', dataset: 'fashion-mnist', models: [{ method, unet: 'tiny' }], pretrain: { steps }, probe: { timesteps: [5], sigmas: [0.5] }, baselines: ['untrained'] }));

  it.each([
    ['ddpm', 3000],
    ['edm', 40],
  ] as const)('pretrain --method %s --steps %i resolves as a planned sweep run', async (method, steps) => {
    const { runs } = await planned(method, steps);
    const t = await pretrainTaskFromArgs({ ...base, method, steps: String(steps) });
    const { hyper } = runs.find((r) => !r.untrained) ?? runs[0];
    expect(t).toMatchObject({ steps, batchSize: hyper.batchSize, learningRate: hyper.learningRate, warmupSteps: hyper.warmupSteps, emaDecayCap: hyper.emaDecayCap, checkpointEvery: hyper.checkpointEvery, gradClip: hyper.gradClip });
    // --steps 0: the untrained control, as the sweep plans it.
    const control = runs.find((r) => r.untrained)?.hyper;
    expect(await pretrainTaskFromArgs({ ...base, method, steps: '0' })).toMatchObject({ steps: 0, warmupSteps: control?.warmupSteps, checkpointEvery: control?.checkpointEvery, emaDecayCap: control?.emaDecayCap });
  });

  it('probe takes the sweep probe defaults', () => {
    const spec = probeSpecSchema.parse({});
    expect(protocolFromArgs({}, 'mnist')).toMatchObject({ epochs: spec.epochs, batchSize: spec.batchSize, learningRate: spec.learningRate, noiseSeed: spec.noiseSeed, pooling: spec.pooling, noise: spec.noise, probe: spec.protocol });
  });
});
