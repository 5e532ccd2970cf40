import { parseArgs } from 'node:util';
import { ApiClient, CliError } from './api-client';
import { heatmapFromProbeFiles, heatmapPng } from './commands/heatmap.command';
import { leaderboard, workers } from './commands/leaderboard.command';
import { pretrainInline } from './commands/pretrain.command';
import { cacheCommand } from './commands/cache.command';
import { noiseSearchInline } from './commands/noise-search.command';
import { probeInline } from './commands/probe.command';
import { sweepProgress } from './commands/progress.command';
import { sampleInline } from './commands/sample.command';
import { tokenCommand } from './commands/token.command';
import { cancelSweep, listSweeps, pauseSweep, renderSweep, retryFailed, submitSweep, sweepStatus, waitForSweep } from './commands/sweep.command';

const USAGE = `ddae: submit and follow DDAE sweeps, read the leaderboard; pretrain and sample models inline

usage: npm run ddae -- <command> [options]

  sweep submit <file>     submit a sweep spec (YAML or JSON); prints the sweep id
      --dry-run           validate and plan only, store nothing
      --idempotency-key K a retried submit with the same key returns the same sweep
      --wait              follow the sweep until it ends, then print its status
  sweep status <id>       status, progress, runs and probe tasks of a sweep
  sweep watch <id>        follow a sweep until it ends (exit 1 unless it succeeded)
  sweep list              recent sweeps
  sweep cancel <id>       cancel a sweep
  sweep pause <id>        pause a sweep (nothing new starts; running jobs finish)
  sweep resume <id>       resume a paused sweep
  sweep retry-failed <id> rerun exactly the failed runs, probe tasks and baselines
  progress <id>           probing during pretraining: accuracy against step per run (best and every
                          cell of the small grid), and where a plateau stopped a run early
  leaderboard             best probe results beside the baselines
      --dataset D --method ddpm|edm --sweep ID --per cell|run|config --limit N
                          (config: mean ± std over seeds per model, layer, noise and protocol)
  heatmap <id>            render a sweep's layer x noise heatmap to a PNG
      --out FILE          where to write it (default heatmap-<id>.png)
  heatmap --from A.json,B.json [--labels a,b] [--baseline pixels=0.8451] [--title T] --out FILE
                          the same from files written by inline "probe ... --json" (no service)
  workers                 live workers
  token create            create an API token (printed once) --name N --scope read|submit|admin (submit)
  token list | token revoke <id|prefix>
                          tokens live in Postgres: these use DATABASE_URL, not the API

inline commands (TensorFlow.js in this process; no API, Redis or Postgres):
  pretrain                train a diffusion UNet as a worker would; resumes when --out holds checkpoints
      --dataset fashion-mnist|mnist|cifar10 --steps N --out DIR (required) --method ddpm|edm (ddpm)
                          (--steps 0 writes the initial weights: the untrained network, to probe as a control)
      --unet tiny|small|base|reference|'{"baseChannels":16,"channelMults":[1,2,2],"blocksPerLevel":1}'
      --batch N (64) --lr X (2e-4) --warmup N (steps/10, max 1000) --ema-cap X (0.9999 ddpm, 0.9993 edm)
      --seed S (0) --train-size N (all) --checkpoint-every N (500) --data-dir DIR
      --probe-every N     probe the checkpoint every N steps on a small grid (fast protocol, fixed noise):
        --probe-noise L   t (ddpm) or sigma (edm) levels, e.g. 11 or 5,50 (required with --probe-every)
        --probe-layers all|out_2,out_4 (all decoder blocks) --probe-train-size N (2000)
        --probe-test-size N (1000) --probe-epochs N (5)
        --probe-pooling gap|avg2|avg4 (gap; on small models avg4 separates the steps far better)
        --patience N      stop once N probes in a row gain less than --min-delta X (0.002); off by default
      prints progress to stderr; --json: {"checkpoint","steps","seconds","parameters","backend"} (+ "gpu" on webgpu)
                          (+ "progress": [{"step","accuracy"}], "stoppedEarly" with --probe-every)
  sample                  generate images from a checkpoint's EMA weights into a PNG grid
      --checkpoint DIR    a pretrain --out directory (newest checkpoint) or one step-XXXXXXXX directory
      --n N (64) --steps N (50 DDIM steps for ddpm, 18 Heun steps for edm) --seed S (0)
      --batch N (64 images per network call) --eta X (DDIM only, 0) --out FILE (samples.png)
      --weights ema|raw   EMA weights (default, what features use) or the raw optimiser weights
  probe                   train linear probes inline on raw pixels or on a checkpoint's features
      --features pixels --dataset D            the raw-pixel baseline
      --checkpoint DIR --layers all|out_1,out_2 --noise 5,25,100 [--dataset D]
      --pooling gap|avg2|avg4 (gap) --epochs N (15) --batch N (128) --lr X (1e-3) --seed S (0)
      --train-size N (all) --test-size N (all) --noise-seed S (0) --standardize true|false (true)
      --protocol fast|reference (fast: linear probe on cached features; reference: features
                          recomputed every epoch from augmented images)
      --noise-protocol fixed|fresh (fixed; fresh: new noise every epoch, needs --protocol reference)
      --cache DIR|none    feature cache (default $ARTIFACT_DIR/features or ./artifacts/features)
      --json: last line is one JSON object with at least "accuracy" (the best cell)
  noise-search            measure the adaptive noise search against the full grid on one checkpoint
      --checkpoint DIR --noise GRID (e.g. 1,2,3,5,8,11,15,20,25,30,40,50) --coarse N (4)
      --min-step X (0)    and every probe option above (layers, pooling, sizes, protocol, cache)
      --json: {"grid":{"jobs","best"},"adaptive":{"jobs","rounds","best"},"foundGridBest","accuracyGap",
                          "cells",...}: every (layer, level) cell, so heatmap --from reads the file too
  cache list              the feature cache (--cache DIR, default $ARTIFACT_DIR/features): size per checkpoint
  cache prune             delete entries unused for --older-than 14d|12h|30m|0 (optionally only --checkpoint DIR's),
                          plus leftovers of interrupted writes; --dry-run shows what would go; safe beside workers
  --backend B             auto, tensorflow-gpu, webgpu, tensorflow, native, wasm or cpu (default $DDAE_BACKEND or auto;
                          auto takes webgpu on a hardware GPU only, --backend webgpu also on a software adapter)
  --gpu G                 the webgpu backend's GPU: auto, an adapter index, pci-DDDD_BB_DD_F or part of its name
                          (default $DDAE_GPU or auto: the one hardware adapter)

common options:
  --api URL               API base URL (default $DDAE_API_URL or http://127.0.0.1:3000)
  --token T               API token (default $DDAE_API_TOKEN); needed for submit, cancel, pause...
  --json                  machine-readable output (one JSON document)
`;

async function main(argv: string[]): Promise<string> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      api: { type: 'string' },
      json: { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
      'idempotency-key': { type: 'string' },
      wait: { type: 'boolean', default: false },
      dataset: { type: 'string' },
      method: { type: 'string' },
      sweep: { type: 'string' },
      per: { type: 'string' },
      limit: { type: 'string' },
      out: { type: 'string' },
      // inline commands (pretrain, sample)
      unet: { type: 'string' },
      steps: { type: 'string' },
      batch: { type: 'string' },
      lr: { type: 'string' },
      warmup: { type: 'string' },
      'ema-cap': { type: 'string' },
      seed: { type: 'string' },
      'train-size': { type: 'string' },
      'checkpoint-every': { type: 'string' },
      'probe-every': { type: 'string' },
      'probe-noise': { type: 'string' },
      'probe-layers': { type: 'string' },
      'probe-train-size': { type: 'string' },
      'probe-test-size': { type: 'string' },
      'probe-epochs': { type: 'string' },
      'probe-pooling': { type: 'string' },
      'older-than': { type: 'string' },
      patience: { type: 'string' },
      'min-delta': { type: 'string' },
      'data-dir': { type: 'string' },
      backend: { type: 'string' },
      gpu: { type: 'string' },
      checkpoint: { type: 'string' },
      n: { type: 'string' },
      eta: { type: 'string' },
      weights: { type: 'string' },
      features: { type: 'string' },
      layers: { type: 'string' },
      noise: { type: 'string' },
      pooling: { type: 'string' },
      epochs: { type: 'string' },
      'noise-seed': { type: 'string' },
      'test-size': { type: 'string' },
      standardize: { type: 'string' },
      protocol: { type: 'string' },
      'noise-protocol': { type: 'string' },
      cache: { type: 'string' },
      coarse: { type: 'string' },
      'min-step': { type: 'string' },
      from: { type: 'string' },
      labels: { type: 'string' },
      baseline: { type: 'string' },
      title: { type: 'string' },
      token: { type: 'string' },
      name: { type: 'string' },
      scope: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [command, sub, arg] = positionals;
  if (values.help || !command) return USAGE;
  const api = new ApiClient(values.api ?? process.env.DDAE_API_URL ?? 'http://127.0.0.1:3000', values.token ?? process.env.DDAE_API_TOKEN);
  const json = values.json ?? false;
  switch (command) {
    case 'sweep':
      switch (sub) {
        case 'submit': {
          if (!arg) throw new CliError('sweep submit needs a spec file: npm run ddae -- sweep submit examples/fashion-mnist.yaml');
          const out = await submitSweep(api, arg, { dryRun: values['dry-run'] ?? false, idempotencyKey: values['idempotency-key'], json });
          if (!values.wait || values['dry-run']) return out;
          const id = json ? (JSON.parse(out) as { id: string }).id : out.split('\n')[0].split(' ')[0];
          process.stdout.write(`${out}\n`);
          const final = await waitForSweep(api, id, { intervalMs: 2_000, timeoutMs: 24 * 3600_000, print: (l) => process.stderr.write(`${l}\n`) });
          return json ? JSON.stringify(final) : renderSweep(final as Parameters<typeof renderSweep>[0]);
        }
        case 'status':
          if (!arg) throw new CliError('sweep status needs a sweep id: npm run ddae -- sweep status <id>');
          return sweepStatus(api, arg, { json });
        case 'watch': {
          if (!arg) throw new CliError('sweep watch needs a sweep id: npm run ddae -- sweep watch <id>');
          const final = await waitForSweep(api, arg, { intervalMs: 3_000, timeoutMs: 7 * 24 * 3600_000, print: (l) => process.stderr.write(`${l}\n`) });
          if (final.status !== 'SUCCEEDED') process.exitCode = 1;
          return json ? JSON.stringify(final) : `sweep ${final.id} ${final.status}`;
        }
        case 'list':
          return listSweeps(api, { json });
        case 'cancel':
          if (!arg) throw new CliError('sweep cancel needs a sweep id: npm run ddae -- sweep cancel <id>');
          return cancelSweep(api, arg, { json });
        case 'pause':
        case 'resume':
          if (!arg) throw new CliError(`sweep ${sub} needs a sweep id: npm run ddae -- sweep ${sub} <id>`);
          return pauseSweep(api, arg, sub, { json });
        case 'retry-failed':
          if (!arg) throw new CliError('sweep retry-failed needs a sweep id: npm run ddae -- sweep retry-failed <id>');
          return retryFailed(api, arg, { json });
        default:
          throw new CliError(`unknown sweep command "${sub ?? ''}": use submit, status, watch, list, cancel, pause, resume or retry-failed (npm run ddae -- --help)`);
      }
    case 'progress':
      if (!sub) throw new CliError('progress needs a sweep id: npm run ddae -- progress <id>');
      return sweepProgress(api, sub, { json });
    case 'leaderboard':
      return leaderboard(api, { dataset: values.dataset, method: values.method, sweep: values.sweep, per: values.per, limit: values.limit, json });
    case 'heatmap':
      if (values.from !== undefined) {
        return heatmapFromProbeFiles(values.from.split(',').map((f) => f.trim()).filter(Boolean), { labels: values.labels, baseline: values.baseline, title: values.title, out: values.out, json });
      }
      if (!sub) throw new CliError('heatmap needs a sweep id: npm run ddae -- heatmap <id> --out docs/heatmap.png');
      return heatmapPng(api, sub, { out: values.out, json });
    case 'workers':
      return workers(api, { json });
    case 'token':
      return tokenCommand(sub, arg, { name: values.name, scope: values.scope, json, databaseUrl: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/ddae' });
    case 'probe':
      if (sub !== undefined) throw new CliError(`probe takes options only, got "${sub}" (npm run ddae -- --help lists them)`);
      return probeInline(values, { json });
    case 'cache':
      return cacheCommand(sub, { cache: values.cache, checkpoint: values.checkpoint, 'older-than': values['older-than'], 'dry-run': values['dry-run'] }, { json });
    case 'noise-search':
      if (sub !== undefined) throw new CliError(`noise-search takes options only, got "${sub}" (npm run ddae -- --help lists them)`);
      return noiseSearchInline(values, { json });
    case 'pretrain':
    case 'sample':
      if (sub !== undefined) throw new CliError(`${command} takes options only, got "${sub}" (npm run ddae -- --help lists them)`);
      return command === 'pretrain' ? pretrainInline(values, { json }) : sampleInline(values, { json });
    default:
      throw new CliError(`unknown command "${command}" (npm run ddae -- --help lists them)`);
  }
}

main(process.argv.slice(2)).then(
  (out) => {
    process.stdout.write(`${out}\n`);
  },
  (error: unknown) => {
    if (error instanceof CliError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`ddae: ${(error as Error).message}\n`);
    } else {
      process.stderr.write(`ddae: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    }
    process.exitCode = 1;
  },
);
