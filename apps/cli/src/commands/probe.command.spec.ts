import { CliError } from '../api-client';
import * as path from 'node:path';
import { featureCacheDirOf, parseLabelBudgets, parseNoiseLevels, probeInline, protocolFromArgs } from './probe.command';

describe('the feature cache a probe writes to', () => {
  const saved = process.env.ARTIFACT_DIR;
  afterEach(() => {
    if (saved === undefined) delete process.env.ARTIFACT_DIR;
    else process.env.ARTIFACT_DIR = saved;
  });

  it('is --cache DIR, else the workers\' $ARTIFACT_DIR/features, else none (never a directory nobody named)', () => {
    delete process.env.ARTIFACT_DIR;
    expect(featureCacheDirOf(undefined)).toBeUndefined();
    expect(featureCacheDirOf('none')).toBeUndefined();
    expect(featureCacheDirOf('c')).toBe(path.resolve('c'));
    process.env.ARTIFACT_DIR = '/srv/artifacts';
    expect(featureCacheDirOf(undefined)).toBe('/srv/artifacts/features');
    expect(featureCacheDirOf('none')).toBeUndefined();
  });
});

describe('probe command arguments', () => {
  it('defaults to the reference optimiser on cached features (fast) of the whole split', () => {
    expect(protocolFromArgs({}, 'fashion-mnist')).toEqual({
      pooling: 'gap', noise: 'fixed', noiseSeed: 0, probe: 'fast', epochs: 15, batchSize: 128, learningRate: 1e-3, standardize: true, trainSize: 60000, testSize: 10000, probeSeed: 0,
    });
  });

  it('names the option and the fix for a bad value', () => {
    expect(() => protocolFromArgs({ epochs: 'ten' }, 'fashion-mnist')).toThrow(/--epochs must be .*\(e\.g\. --epochs 15\)/);
    expect(() => protocolFromArgs({ 'train-size': '70000' }, 'fashion-mnist')).toThrow(CliError);
    expect(() => protocolFromArgs({ pooling: 'max' }, 'fashion-mnist')).toThrow(/gap, avg2, avg4/);
    expect(() => protocolFromArgs({ protocol: 'slow' }, 'fashion-mnist')).toThrow(/reference, fast/);
    expect(() => protocolFromArgs({ 'noise-protocol': 'fresh' }, 'fashion-mnist')).toThrow(/--protocol reference/);
  });

  it('selects the noise and probe protocols', () => {
    expect(protocolFromArgs({ protocol: 'reference', 'noise-protocol': 'fresh' }, 'fashion-mnist')).toMatchObject({ noise: 'fresh', probe: 'reference' });
  });

  it('fine-tunes with the spec\'s probe.finetune defaults (10 epochs, Adam 1e-3, augmented), options override them', () => {
    expect(protocolFromArgs({ protocol: 'finetune', pooling: 'avg4' }, 'fashion-mnist')).toEqual({
      pooling: 'avg4', noise: 'fixed', noiseSeed: 0, probe: 'finetune', epochs: 10, batchSize: 128, learningRate: 1e-3, standardize: true, trainSize: 60000, testSize: 10000, probeSeed: 0, augment: true,
    });
    expect(protocolFromArgs({ protocol: 'finetune', epochs: '3', lr: '5e-4', augment: 'false', 'noise-protocol': 'fresh' }, 'fashion-mnist')).toMatchObject({ epochs: 3, learningRate: 5e-4, augment: false, noise: 'fresh' });
    expect(() => protocolFromArgs({ augment: 'true' }, 'fashion-mnist')).toThrow(/--augment applies to --protocol finetune only/);
    expect(() => protocolFromArgs({ protocol: 'finetune', augment: 'yes' }, 'fashion-mnist')).toThrow(/--augment must be true or false/);
    expect(() => protocolFromArgs({ protocol: 'fast' }, 'fashion-mnist')).not.toThrow();
  });

  it('parses noise levels and refuses garbage', () => {
    expect(parseNoiseLevels('5, 25,100')).toEqual([5, 25, 100]);
    expect(() => parseNoiseLevels('5,,x')).toThrow(/--noise/);
    expect(() => parseNoiseLevels(undefined)).toThrow(/--noise/);
  });

  it('parses label budgets (in total, class-balanced) and names the fix for a bad one', () => {
    const protocol = protocolFromArgs({ 'train-size': '500' }, 'fashion-mnist');
    expect(parseLabelBudgets(undefined, protocol, 'fashion-mnist')).toEqual(['all']);
    expect(parseLabelBudgets('10, 100,all', protocol, 'fashion-mnist')).toEqual([10, 100, 'all']);
    expect(() => parseLabelBudgets('5,all', protocol, 'fashion-mnist')).toThrow(/--labels "5,all": 5 labels cannot cover the 10 classes .*use at least 10/);
    expect(() => parseLabelBudgets('600', protocol, 'fashion-mnist')).toThrow(/600 labels exceed the probe's 500 training images \(--train-size\)/);
    expect(() => parseLabelBudgets('100,20', protocol, 'fashion-mnist')).toThrow(/ascending order, all last/);
    expect(() => parseLabelBudgets('many', protocol, 'fashion-mnist')).toThrow(/"many" is neither all nor a positive number/);
  });

  it('probes raw pixels at each label budget (Fashion-MNIST slice), the largest the headline', async () => {
    const r = JSON.parse(await probeInline({ features: 'pixels', dataset: 'fashion-mnist', 'train-size': '200', 'test-size': '100', epochs: '2', labels: '20,all', backend: 'wasm' }, { json: true, log: () => undefined })) as {
      accuracy: number; labels: unknown; protocolKey: string; budgets: { labels: unknown; accuracy: number; protocolKey: string }[];
    };
    expect(r.budgets.map((b) => b.labels)).toEqual([20, 'all']);
    expect(r.labels).toBe('all');
    expect(r.accuracy).toBe(r.budgets[1].accuracy);
    expect(r.budgets[0].protocolKey).toBe(`${r.protocolKey};labels=20`);
    expect(r.budgets[0].accuracy).not.toBe(r.budgets[1].accuracy);
    // Reads the real 60,000-image split: ~15 s on the shared 2-core machine under load.
  }, 60_000);

  it('needs exactly one feature source', async () => {
    await expect(probeInline({}, { json: true })).rejects.toThrow(/exactly one of --features pixels or --checkpoint/);
    await expect(probeInline({ features: 'hog' }, { json: true })).rejects.toThrow(/only "pixels"/);
    await expect(probeInline({ features: 'pixels', checkpoint: 'x' }, { json: true })).rejects.toThrow(/exactly one/);
    await expect(probeInline({ features: 'pixels', dataset: 'fashion-mnist', protocol: 'finetune' }, { json: true })).rejects.toThrow(/--protocol finetune trains a network: it needs --checkpoint/);
  });
});
