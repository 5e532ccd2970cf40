import { modelImageSize, paddedImageSize, probeLabelBudgets, resolveModelBackbone, resolveUNet, sweepSpecSchema, UNET_PRESETS } from './sweep-spec.schema';
import { protocolAtBudget, protocolKey } from './jobs.schema';

describe('sweep spec schema', () => {
  const minimal = {
    name: 'm',
    dataset: 'fashion-mnist',
    models: [{ method: 'ddpm', unet: 'tiny' }],
    pretrain: { steps: 100 },
    probe: { timesteps: [5] },
  };

  it('fills every default', () => {
    const spec = sweepSpecSchema.parse(minimal);
    expect(spec.pretrain).toMatchObject({ batchSize: 64, learningRate: 2e-4, gradClip: 1, checkpointEvery: 500, seeds: [0] });
    expect(spec.probe).toMatchObject({ layers: 'all', pooling: 'gap', epochs: 15, batchSize: 128, learningRate: 1e-3, trainSize: 10000, noiseSeed: 0 });
    expect(spec.baselines).toEqual(['pixels']);
  });

  it('requires sigmas for an EDM model and timesteps for a DDPM one', () => {
    const edm = sweepSpecSchema.safeParse({ ...minimal, models: [{ method: 'edm', unet: 'tiny' }] });
    expect(edm.success).toBe(false);
    expect(edm.error?.issues.map((i) => i.path.join('.'))).toEqual(['probe.sigmas']);
  });

  it('names every unknown layer by its index', () => {
    const r = sweepSpecSchema.safeParse({ ...minimal, probe: { timesteps: [5], layers: ['out_1', 'mid_9', 'out_4', 'x'] } });
    expect(r.error?.issues.map((i) => i.path.join('.'))).toEqual(['probe.layers.1', 'probe.layers.3']);
  });

  it('pads 28-pixel images to 32 and leaves 32 alone', () => {
    expect(paddedImageSize(28)).toBe(32);
    expect(paddedImageSize(32)).toBe(32);
  });

  it('takes a model imageSize that every level halves (28 with 3 levels: 28, 14, 7) and knows its layers', () => {
    const spec = sweepSpecSchema.parse({ ...minimal, models: [{ method: 'ddpm', unet: 'small', imageSize: 28 }], probe: { timesteps: [5], layers: ['out_1', 'out_9'] } });
    expect(modelImageSize(spec.dataset, spec.models[0])).toBe(28);
    expect(modelImageSize('fashion-mnist', {})).toBe(32);
  });

  it('refuses an imageSize the levels cannot halve, or smaller than the images, naming models.i.imageSize and the sizes that would do', () => {
    const odd = sweepSpecSchema.safeParse({ ...minimal, models: [{ method: 'ddpm', unet: 'tiny' }, { method: 'ddpm', unet: 'reference', imageSize: 28 }] });
    expect(odd.error?.issues.map((i) => i.path.join('.'))).toEqual(['models.1.imageSize']);
    expect(odd.error?.issues[0].message).toMatch(/4 levels do not divide 28x28 .*28, 14, 7, 3\.5.*imageSize 32 or 40/);
    const small = sweepSpecSchema.safeParse({ ...minimal, models: [{ method: 'ddpm', unet: 'tiny', imageSize: 24 }] });
    expect(small.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([['models.0.imageSize', 'fashion-mnist images are 28x28: imageSize must be at least 28']]);
  });

  it('resolves presets into copies (mutating one never changes the preset)', () => {
    const unet = resolveUNet('small');
    unet.channelMults.push(4);
    expect(UNET_PRESETS.small.channelMults).toEqual([1, 2, 2]);
  });

  it('keys a probe protocol canonically', () => {
    const p = { pooling: 'gap', noise: 'fixed', noiseSeed: 0, probe: 'fast', epochs: 15, batchSize: 128, learningRate: 0.001, standardize: true, trainSize: 100, testSize: 50, probeSeed: 0 } as const;
    expect(protocolKey(p)).toBe('pool=gap;noise=fixed:0;probe=fast;ep=15;bs=128;lr=0.001;std=1;n=100/50;seed=0');
    expect(protocolKey({ ...p, epochs: 14 })).not.toBe(protocolKey(p));
    expect(protocolKey({ ...p, probe: 'reference' })).toBe('pool=gap;noise=fixed:0;probe=reference;ep=15;bs=128;lr=0.001;std=1;n=100/50;seed=0');
    expect(protocolKey({ ...p, noise: 'fresh', probe: 'reference' })).toContain('noise=fresh:0;probe=reference');
  });

  it('takes label budgets (in total, class-balanced) up to the probe trainSize, unique, ascending, all last; none means all', () => {
    expect(sweepSpecSchema.parse(minimal).probe.labels).toBeUndefined();
    expect(probeLabelBudgets(sweepSpecSchema.parse(minimal).probe)).toEqual(['all']);
    const ok = sweepSpecSchema.parse({ ...minimal, probe: { timesteps: [5], labels: [10, 1000, 10000, 'all'] } });
    expect(probeLabelBudgets(ok.probe)).toEqual([10, 1000, 10000, 'all']);
    const bad = sweepSpecSchema.safeParse({ ...minimal, probe: { timesteps: [5], trainSize: 500, labels: [9, 100, 100, 50, 600, 'all', 20] } });
    expect(bad.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['probe.labels.0', expect.stringMatching(/9 labels cannot cover the 10 classes .*in total.*use at least 10/)],
      ['probe.labels.2', '100 is listed twice: list each budget once'],
      ['probe.labels.3', 'list the budgets in ascending order, all last'],
      ['probe.labels.4', "600 labels exceed the probe's 500 training images (probe.trainSize): raise trainSize or use all"],
      ['probe.labels.6', 'list the budgets in ascending order, all last'],
    ]);
    const types = sweepSpecSchema.safeParse({ ...minimal, probe: { timesteps: [5], labels: [0, 'some', 1.5] } });
    expect(types.error?.issues.map((i) => i.path.join('.'))).toEqual(['probe.labels.0', 'probe.labels.1', 'probe.labels.2']);
  });

  it('keys a result at a label budget apart from the same protocol on every image', () => {
    const p = { pooling: 'gap', noise: 'fixed', noiseSeed: 0, probe: 'fast', epochs: 15, batchSize: 128, learningRate: 0.001, standardize: true, trainSize: 100, testSize: 50, probeSeed: 0 } as const;
    expect(protocolKey(protocolAtBudget(p, 'all'))).toBe(protocolKey(p));
    expect(protocolKey(protocolAtBudget(p, 20))).toBe(`${protocolKey(p)};labels=20`);
    expect(protocolAtBudget({ ...p, labels: 20 }, 'all')).toEqual(p);
  });

  it('defaults to fixed noise and the fast protocol, and refuses fresh noise on cached features', () => {
    const base = { name: 'x', dataset: 'fashion-mnist', models: [{ method: 'ddpm', unet: 'tiny' }], pretrain: { steps: 10 }, probe: { timesteps: [5] } };
    expect(sweepSpecSchema.parse(base).probe).toMatchObject({ noise: 'fixed', protocol: 'fast' });
    expect(sweepSpecSchema.safeParse({ ...base, probe: { timesteps: [5], noise: 'fresh', protocol: 'reference' } }).success).toBe(true);
    const bad = sweepSpecSchema.safeParse({ ...base, probe: { timesteps: [5], noise: 'fresh' } });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues.map((i) => i.path.join('.'))).toEqual(['probe.noise']);
  });

  it('takes pretrain.samples as false or {n, steps, seed: 0}, and names a bad field by path', () => {
    const base = { name: 'x', dataset: 'fashion-mnist', models: [{ method: 'ddpm', unet: 'tiny' }], probe: { timesteps: [5] } };
    expect(sweepSpecSchema.parse({ ...base, pretrain: { steps: 10, samples: false } }).pretrain.samples).toBe(false);
    expect(sweepSpecSchema.parse({ ...base, pretrain: { steps: 10, samples: { n: 4, steps: 5 } } }).pretrain.samples).toEqual({ n: 4, steps: 5, seed: 0 });
    expect(sweepSpecSchema.parse({ ...base, pretrain: { steps: 10 } }).pretrain.samples).toBeUndefined();
    const bad = sweepSpecSchema.safeParse({ ...base, pretrain: { steps: 10, samples: { n: 0, steps: 5 } } });
    expect(bad.error?.issues.map((i) => i.path.join('.'))).toEqual(['pretrain.samples.n']);
    expect(sweepSpecSchema.safeParse({ ...base, pretrain: { steps: 10, samples: true } }).success).toBe(false);
  });

  it('takes pretrain.fid on Fashion-MNIST only (the extractor is a Fashion-MNIST classifier), seed 0 by default', () => {
    const base = { name: 'x', dataset: 'fashion-mnist', models: [{ method: 'ddpm', unet: 'tiny' }], pretrain: { steps: 10, fid: { samples: 64, steps: 4 } }, probe: { timesteps: [5] } };
    expect(sweepSpecSchema.parse(base).pretrain.fid).toEqual({ samples: 64, steps: 4, seed: 0 });
    const mnist = sweepSpecSchema.safeParse({ ...base, dataset: 'mnist' });
    expect(mnist.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([['pretrain.fid', expect.stringMatching(/classifier trained on fashion-mnist: not available for mnist/)]]);
    const tooFew = sweepSpecSchema.safeParse({ ...base, pretrain: { steps: 10, fid: { samples: 1, steps: 4, extra: 1 } } });
    expect(tooFew.error?.issues.map((i) => i.path.join('.')).sort()).toEqual(['pretrain.fid', 'pretrain.fid.samples']);
  });

  describe('a DiT model', () => {
    const dit = (model: Record<string, unknown>, probe: Record<string, unknown> = { timesteps: [5] }) => sweepSpecSchema.safeParse({ ...minimal, models: [{ method: 'ddpm', backbone: 'dit', ...model }], probe });
    const paths = (r: ReturnType<typeof dit>) => r.error?.issues.map((i) => i.path.join('.'));

    it('takes a preset, { preset } or a full configuration, and resolves it', () => {
      for (const form of ['dit-tiny', { preset: 'dit-tiny' }, { depth: 4, width: 48, heads: 4, patch: 4 }]) {
        const r = dit({ dit: form });
        expect(r.error?.issues).toBeUndefined();
        const model = r.data?.models[0];
        if (!model) throw new Error('the spec did not parse');
        expect(resolveModelBackbone(model)).toEqual({ backbone: 'dit', dit: { depth: 4, width: 48, heads: 4, patch: 4, mlpRatio: 4 } });
      }
      // A UNet spec without `backbone` stays as written (its stored spec and hash unchanged).
      const unet = sweepSpecSchema.parse(minimal);
      expect(unet.models[0]).toEqual({ method: 'ddpm', unet: 'tiny' });
      expect(resolveModelBackbone(unet.models[0])).toMatchObject({ backbone: 'unet', unet: { baseChannels: 8 } });
    });

    it.each([
      ['width not divisible by heads', { dit: { depth: 2, width: 36, heads: 8, patch: 4 } }, 'models.0.dit.width', /not divisible by 8 heads/],
      ['a patch that does not divide the image', { dit: { depth: 2, width: 32, heads: 4, patch: 3 } }, 'models.0.dit.patch', /patch 3 does not divide 32x32/],
      ['a bad field', { dit: { depth: 0, width: 32, heads: 4, patch: 4 } }, 'models.0.dit.depth', /./],
      ['an unknown field', { dit: { depth: 2, width: 32, heads: 4, patch: 4, layers: 3 } }, 'models.0.dit', /layers/],
      ['an unknown preset', { dit: 'dit-huge' }, 'models.0.dit', /dit-tiny/],
      ['an unknown preset object', { dit: { preset: 'dit-huge' } }, 'models.0.dit.preset', /dit-tiny/],
      ['no dit', {}, 'models.0.dit', /required with backbone: dit/],
      ['a unet with backbone dit', { dit: 'dit-tiny', unet: 'tiny' }, 'models.0.unet', /takes `dit`/],
    ])('answers %s with the path of the field', (_label, model, path, message) => {
      const r = dit(model);
      expect(r.success).toBe(false);
      expect(paths(r)).toContain(path);
      expect(r.error?.issues.find((i) => i.path.join('.') === path)?.message).toMatch(message);
    });

    it('refuses a dit on a UNet model and a UNet model without a unet', () => {
      const r = sweepSpecSchema.safeParse({ ...minimal, models: [{ method: 'ddpm', unet: 'tiny', dit: 'dit-tiny' }] });
      expect(r.error?.issues.map((i) => i.path.join('.'))).toEqual(['models.0.dit']);
      const none = sweepSpecSchema.safeParse({ ...minimal, models: [{ method: 'ddpm' }] });
      expect(none.error?.issues.map((i) => i.path.join('.'))).toEqual(['models.0.unet']);
    });

    it('names the layers a DiT has: blk_1..blk_N', () => {
      const r = dit({ dit: 'dit-tiny' }, { timesteps: [5], layers: ['blk_1', 'out_1', 'blk_5'] });
      expect(paths(r)).toEqual(['probe.layers.1', 'probe.layers.2']);
      expect(r.error?.issues[0].message).toMatch(/model 0 \(a DiT; known: blk_1, blk_2, blk_3, blk_4\)$/);
      const progress = sweepSpecSchema.safeParse({ ...minimal, models: [{ method: 'ddpm', backbone: 'dit', dit: 'dit-tiny' }], pretrain: { steps: 100, progressProbe: { every: 10, layers: ['mid_1'] } } });
      expect(progress.error?.issues.map((i) => i.path.join('.'))).toEqual(['pretrain.progressProbe.layers.0']);
    });
  });
});
