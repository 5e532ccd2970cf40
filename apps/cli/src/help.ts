/** The CLI's help: an overview (`ddae --help`) and one page per command (`ddae <command> --help`, `ddae help <command>`). */

const COMMON = `common options:
  --api URL               API base URL (default $DDAE_API_URL or http://127.0.0.1:3000)
  --token T               API token (default $DDAE_API_TOKEN); needed for submit, cancel, pause...
  --json                  machine-readable output (one JSON document)
  -h, --help              this command's help`;

const ID = `<id> is a sweep id, or the short id the web page and tables show: a unique prefix of at least
8 hex digits (an ambiguous prefix lists the sweeps it matches).`;

export const COMMAND_HELP: Record<string, string> = {
  sweep: `usage: npm run ddae -- sweep <submit|status|watch|list|cancel|pause|resume|retry-failed> ...

  sweep submit <file>     submit a sweep spec (YAML or JSON); prints the sweep id
      --dry-run           validate and plan only, store nothing
      --idempotency-key K a retried submit with the same key returns the same sweep
      --wait              follow the sweep until it ends, then print its status
  sweep status <id>       status, progress, runs and probe tasks of a sweep
  sweep watch <id>        follow a sweep until it ends (exit 1 unless it succeeded)
  sweep list              recent sweeps, newest first
      --status S          only QUEUED, RUNNING, SUCCEEDED, FAILED or CANCELLED ones
      --limit N           at most N (1..200, default 50)
  sweep cancel <id>       cancel a sweep
  sweep pause <id>        pause a sweep (nothing new starts; running jobs finish)
  sweep resume <id>       resume a paused sweep
  sweep retry-failed <id> rerun exactly the failed runs, probe tasks and baselines

${ID}

${COMMON}`,
  progress: `usage: npm run ddae -- progress <id> [--out FILE]

Probing during pretraining: accuracy against step per run (best and every cell of the small grid),
and where a plateau stopped a run early.
  --out FILE              instead, write the progress chart as a PNG: the training loss against step
                          of every trained run and, when the sweep probes during pretraining, the best
                          probe accuracy against step ("-" writes it to stdout)

${ID}

${COMMON}`,
  leaderboard: `usage: npm run ddae -- leaderboard [options]

Best probe results beside the baselines (the raw-pixel probe and the untrained network's best cell,
which are never ranked).
  --dataset D             fashion-mnist, mnist or cifar10
  --method M              ddpm or edm
  --sweep ID              one sweep (its id or a unique prefix of at least 8 hex digits)
  --per cell|run|config   every cell (default), each run's best cell, or mean ± std over seeds per
                          model, layer, noise level and protocol
  --limit N               rows per page (1..500, default 20)
  --cursor C              the next page: the cursor a previous page printed
  --labels N|all          the label budget (default all): results of probes trained on N labelled
                          images in total, class-balanced (a budget of the sweep's probe.labels)

${COMMON}`,
  verdict: `usage: npm run ddae -- verdict <id> [--summary FILE [--seconds N]]

One sentence: the trained models' best cell (layer, noise level, mean ± std over seeds) against the
raw-pixel baseline and the untrained network's best cell under the same probe protocol, with both
margins; says when a margin is under 1 point or not above twice the spread over seeds. A control is
never the best cell. --json prints the API's verdict instead.
  --summary FILE          also write the summary as JSON (what npm run demo writes to .demo/summary.json):
                          {"seconds","sweepId","best":{"model","layer","noise","accuracy","std","seeds"},
                           "baselines":{"pixels":{"accuracy"},"untrained":{"accuracy","layer","noise"}},
                           "margins":{"pixels","untrained"}}  (accuracies and margins as fractions)
  --seconds N             the "seconds" of the summary (default 0)
  --labels N|all          the label budget every number is at (default all)

${ID}

${COMMON}`,
  heatmap: `usage: npm run ddae -- heatmap <id> --out FILE
       npm run ddae -- heatmap --from A.json,B.json [--labels a,b] [--baseline pixels=0.8451] [--title T] --out FILE

Renders a sweep's layer x noise heatmap to a PNG: the trained models' grids, then the untrained
network's (a control, never outlined); the legend compares the best trained cell (mean over seeds)
with each baseline. Rows are decoder blocks out_1..out_N, deepest first; columns the noise levels.
  --out FILE              where to write the PNG (required; "-" writes it to stdout)
  --labels N|all          the label budget (default all): cells of probes on N labelled images in
                          total, class-balanced; with --from: the grids' names instead (a,b)
  --from FILES            the same from files written by inline "probe ... --json" (no service)

${ID}

${COMMON}`,
  export: `usage: npm run ddae -- export <id> [--format csv|jsonl] [--out FILE]

Every probe result of a sweep with its hyper-parameters (model, method, UNet, steps, batch size,
learning rate, seed, layer, noise level, pooling, protocol, accuracy, checkpoint step, backend, device,
worker), the untrained network's cells included; streamed from the API.
  --format csv|jsonl      CSV with a header row (default), or one JSON object per line
  --out FILE              write to FILE (written whole or not at all) instead of stdout

${ID}

${COMMON}`,
  workers: `usage: npm run ddae -- workers

Workers with a recent heartbeat.

${COMMON}`,
  token: `usage: npm run ddae -- token <create|list|revoke>

  token create            create an API token (printed once) --name N --scope read|submit|admin (submit)
  token list              every token (never the secret)
  token revoke <id|prefix>
Tokens live in Postgres: these use DATABASE_URL, not the API.

${COMMON}`,
  pretrain: `usage: npm run ddae -- pretrain --dataset D --method ddpm|edm --steps N --out DIR [options]

Trains a diffusion UNet or DiT inline (TensorFlow.js in this process; no API, Redis or Postgres) as a worker
would; resumes when --out holds checkpoints; writes only under --out.
  --dataset fashion-mnist|mnist|cifar10 --steps N --out DIR (required) --method ddpm|edm (ddpm)
                          (--steps 0 writes the initial weights: the untrained network, to probe as a control)
  --preset P              a model preset: UNet tiny|small|base|reference, DiT dit-tiny|dit-small
  --unet tiny|small|base|reference|'{"baseChannels":16,"channelMults":[1,2,2],"blocksPerLevel":1}'
  --backbone unet|dit (unet; a DiT preset implies dit)
  --dit '{"depth":4,"width":64,"heads":4,"patch":4}'  a DiT by its size (mlpRatio 4 by default)
  --batch N (64) --lr X (2e-4) --warmup N (steps/10, max 1000) --ema-cap X (0.9999 ddpm, 0.9993 edm)
  --seed S (0) --train-size N (all) --checkpoint-every N (500) --data-dir DIR
  --image-size N          side of the model input, images centred (default: padded to a power of two, 28 -> 32;
                          28 trains Fashion-MNIST unpadded: every UNet level must halve it, e.g. 28, 14, 7)
  --probe-every N         probe the checkpoint every N steps on a small grid (fast protocol, fixed noise):
    --probe-noise L       t (ddpm) or sigma (edm) levels, e.g. 11 or 5,50 (required with --probe-every)
    --probe-layers all|out_2,out_4 (all: every decoder block of a UNet, blk_1..blk_N of a DiT) --probe-train-size N (2000)
    --probe-test-size N (1000) --probe-epochs N (5)
    --probe-pooling gap|avg2|avg4 (gap; on small models avg4 separates the steps far better)
    --patience N          stop once N probes in a row gain less than --min-delta X (0.002); off by default
  --backend B             auto, tensorflow-gpu, webgpu, tensorflow, native, wasm or cpu (default $DDAE_BACKEND or auto;
                          auto takes webgpu on a hardware GPU only, --backend webgpu also on a software adapter)
  --gpu G                 the webgpu backend's GPU: auto, an adapter index, pci-DDDD_BB_DD_F or part of its name
                          (default $DDAE_GPU or auto: the one hardware adapter)
Prints progress to stderr; --json: {"checkpoint","steps","seconds","parameters","backbone","backend"} (+ "gpu" on webgpu)
(+ "progress": [{"step","accuracy"}], "stoppedEarly" with --probe-every).`,
  import: `usage: npm run ddae -- import FILE.safetensors (--preset P | --unet U | --dit D) --out DIR [options]

Writes one of our checkpoints (DIR/step-00000000) from a PyTorch model's weights in the safetensors
format, under the names of the PyTorch twin (bench/torch_twin.py; docs/import.md has the mapping).
probe --checkpoint DIR and sweeps (models[].checkpoint) read it like a pretrained checkpoint.
  --preset P, --unet U, --dit D, --backbone unet|dit   the architecture, as for pretrain (required)
  --method ddpm|edm (ddpm)   how the model was trained (decides the noise levels its features use)
  --dataset D                the images it takes (padded size and channels); without it
  --image-size N (32)        the input side; the channels are read from the file
A file that does not fit the architecture writes nothing and names the first tensor that does not
(name, expected shape, found shape) or the first missing or unexpected one.
Prints the checkpoint and the source's sha256; --json: {"checkpoint","source","sha256","backbone",
"method","parameters","imageSize","imageChannels"}.`,
  sample: `usage: npm run ddae -- sample --checkpoint DIR --out FILE [options]

Generates images from a checkpoint's EMA weights into a PNG grid (inline, no service).
  --checkpoint DIR        a pretrain --out directory (newest checkpoint) or one step-XXXXXXXX directory
  --out FILE              the PNG to write (required)
  --n N (64) --steps N (50 DDIM steps for ddpm, 18 Heun steps for edm) --seed S (0)
  --batch N (64 images per network call) --eta X (DDIM only, 0)
  --weights ema|raw       EMA weights (default, what features use) or the raw optimiser weights
  --backend B, --gpu G    as for pretrain`,
  fid: `usage: npm run ddae -- fid --checkpoint DIR [options]

Generation quality of a checkpoint, apart from its features (inline, no service): FID and KID of
its samples (EMA weights; DDIM for ddpm, Heun for edm) against the 10,000 Fashion-MNIST test images,
in the feature space of ddae-fmnist-cnn-v1 (a small CNN trained once on Fashion-MNIST, committed
with the repository, sha256 pinned): "FID (ddae-fmnist-cnn-v1 penultimate, 128-d)". Fashion-MNIST
(1-channel, 28x28 or padded) checkpoints only; lower is better for both.
  --checkpoint DIR        a pretrain --out directory (newest checkpoint) or one step-XXXXXXXX directory
  --samples N (2000)      images sampled; FID is biased upward below ~1,000: read KID there
  --steps N (50 DDIM steps for ddpm, 18 Heun steps for edm) --seed S (0) --batch N (64)
  --kid-subsets N (20) --kid-subset-size N (500, capped at --samples)
  --backend B, --gpu G    as for pretrain
  --json: {"fid","kid":{"mean","std","subsets","subsetSize"},"extractor","extractorSha256","samples",
          "reference","referenceCount","sampler","steps","seed","step","checkpoint","seconds",...}`,
  probe: `usage: npm run ddae -- probe (--features pixels --dataset D | --checkpoint DIR --layers L --noise N) [options]

Trains linear probes inline on raw pixels or on a checkpoint's features (the workers' code, no service).
  --features pixels --dataset D            the raw-pixel baseline
  --checkpoint DIR --layers all|out_1,out_2 --noise 5,25,100 [--dataset D]
  --pooling gap|avg2|avg4 (gap) --epochs N (15) --batch N (128) --lr X (1e-3) --seed S (0)
  --train-size N (all) --test-size N (all) --noise-seed S (0) --standardize true|false (true)
  --protocol fast|reference|finetune (fast: linear probe on cached features; reference: features
                          recomputed every epoch from augmented images; finetune: the network up to
                          each layer and a linear head trained end to end, --checkpoint only, defaults
                          --epochs 10 --lr 1e-3 as the spec's probe.finetune)
  --augment true|false    finetune only: random crop (pad 4) and flip every epoch (true)
  --noise-protocol fixed|fresh (fixed; fresh: new noise every epoch, needs --protocol reference or finetune)
  --labels 100,1000,all   label budgets: labelled training images in total, class-balanced, out of
                          --train-size (all: every one); one feature pass per noise level serves all
  --cache DIR|none        feature cache; default $ARTIFACT_DIR/features when ARTIFACT_DIR is set, else none
  --backend B, --gpu G    as for pretrain
  --json: last line is one JSON object with at least "accuracy" (the best cell; with --labels, of
          the largest budget, and "budgets": [{labels, accuracy, best, cells}])`,
  'noise-search': `usage: npm run ddae -- noise-search --checkpoint DIR --noise GRID [options]

Measures the adaptive noise search against the full grid on one checkpoint (inline).
  --checkpoint DIR --noise GRID (e.g. 1,2,3,5,8,11,15,20,25,30,40,50) --coarse N (4)
  --min-step X (0)        and every probe option (layers, pooling, sizes, protocol, --cache)
  --json: {"grid":{"jobs","best"},"adaptive":{"jobs","rounds","best"},"foundGridBest","accuracyGap",
          "cells",...}: every (layer, level) cell, so heatmap --from reads the file too`,
  cache: `usage: npm run ddae -- cache <list|prune> --cache DIR

The feature cache the workers and the inline probes share (--cache DIR, default $ARTIFACT_DIR/features).
  cache list              size per checkpoint
  cache prune             delete entries unused for --older-than 14d|12h|30m|0 (optionally only
                          --checkpoint DIR's), plus leftovers of interrupted writes; --dry-run shows
                          what would go; safe beside workers`,
  help: `usage: npm run ddae -- help [command]

The overview, or one command's help (the same as npm run ddae -- <command> --help).`,
};

export const USAGE = `ddae: submit and follow DDAE sweeps, read the leaderboard; pretrain and sample models inline

usage: npm run ddae -- <command> [options]        (npm run ddae -- help <command> for its options)

service commands (talk to the API):
  sweep submit|status|watch|list|cancel|pause|resume|retry-failed
                          submit a spec, follow and steer sweeps
  progress <id>           accuracy against pretraining step per run (--out F: loss and accuracy chart, PNG)
  verdict <id>            the best trained cell against both baselines, in one sentence
  leaderboard             best probe results beside the baselines (pixels, untrained network)
  heatmap <id> --out F    a sweep's layer x noise heatmap as a PNG
  export <id>             every result with its hyper-parameters, as CSV or JSON lines
  workers                 live workers
  token create|list|revoke
                          API tokens (straight in Postgres, DATABASE_URL)

inline commands (TensorFlow.js in this process; no API, Redis or Postgres):
  pretrain                train a diffusion UNet as a worker would
  sample                  generate images from a checkpoint into a PNG grid
  fid                     FID and KID of a checkpoint's samples (Fashion-MNIST)
  import FILE             a checkpoint from a PyTorch model's safetensors weights
  probe                   linear probes on pixels or on a checkpoint's features
  noise-search            the adaptive noise search against the full grid
  cache list|prune        the feature cache

Sweep ids: the whole UUID, or a unique prefix of at least 8 hex digits (what the tables show).
No command writes a file it was not told to write (--out, --cache, ARTIFACT_DIR).

${COMMON}`;

/** The help of `command`, or null when there is no such command. */
export function helpOf(command: string): string | null {
  return Object.prototype.hasOwnProperty.call(COMMAND_HELP, command) ? COMMAND_HELP[command] : null;
}
