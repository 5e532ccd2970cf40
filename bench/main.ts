/**
 * Benchmarks of our TensorFlow.js UNet against its PyTorch twin, same architecture, same task,
 * measured in one run:
 *   npm run -s bench -- train    [--json] [--backend native|wasm|cpu|webgpu] [--threads N] [--batch N] [--iters N] [--compare-threads] [--no-torch]
 *   npm run -s bench -- features [...same]
 *   npm run -s bench -- orchestration [--json] [--rows N] [--requests N] [--keep]   (./orchestration.ts)
 * The PyTorch twin runs on CUDA where python3's torch has it (else on the CPU); the JSON says which.
 * train: one full optimiser step of libs/diffusion (noise, forward, backward, clipping, Adam, EMA).
 * features: extractFeatures with a tap on every decoder block (one forward pass per batch).
 * The last line of stdout is one JSON object (see README.md in this folder); without --json,
 * human-readable lines come first.
 */
import { rawEnv } from '@ddae/config';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DIT_PRESETS, backboneLayout, backboneOfModelConfig } from '@ddae/contracts';
import type { DiTModelConfig, ModelConfig, UNetModelConfig } from '@ddae/diffusion';
import { forwardFlopsPerImage, TRAIN_FLOPS_FACTOR } from './flops';
import type { BenchChildConfig, BenchChildResult } from './ours';
import { runOrchestrationBench } from './orchestration';

type Task = 'train' | 'features';
type BenchBackend = 'native' | 'wasm' | 'cpu' | 'webgpu';
const BENCH_BACKENDS: BenchBackend[] = ['native', 'wasm', 'cpu', 'webgpu'];
type TorchDevice = 'auto' | 'cuda' | 'cpu';
const TORCH_DEVICES: TorchDevice[] = ['auto', 'cuda', 'cpu'];

interface Options {
  task: Task;
  json: boolean;
  backend: BenchBackend;
  threads: number;
  batch: number;
  iters: number;
  warmup: number;
  compareThreads: boolean;
  rounds: number;
  torch: boolean;
  torchThreads: number;
  /** The network timed: a DiT preset (--model), else the UNet below with --base channels. */
  model?: ModelConfig;
  torchDevice: TorchDevice;
  /** The Python that runs the twin; default the first of `python3` (PATH) and /usr/bin/python3 that imports torch. */
  python?: string;
  /** UNet base channels (default 32, the benchmark model; smaller only to try the harness quickly). */
  base: number;
}

const ROOT = path.resolve(__dirname, '..');
/** Pythons tried for the twin, in order: the one on PATH (a CUDA build on a GPU host), then Debian's. */
const PYTHONS = ['python3', '/usr/bin/python3'];
/** torch.set_num_threads for the reference (the brief's fair setting on 2 cores). */
const TORCH_THREADS = 2;

/** The benchmark model: UNet base 32, (1, 2, 2), 2 blocks per level, attention only in mid_1 (always there), 32x32x1. */
const BASE_MODEL: UNetModelConfig = {
  baseChannels: 32,
  channelMults: [1, 2, 2],
  blocksPerLevel: 2,
  attentionResolutions: [],
  dropout: 0.1,
  groups: 8,
  imageSize: 32,
  imageChannels: 1,
};

/** `--model dit-tiny|dit-small`: the DiT presets at 32x32x1 (dit-small matches the UNet `small` in parameters, not this UNet). */
function ditModel(preset: keyof typeof DIT_PRESETS): DiTModelConfig {
  return { backbone: 'dit', ...DIT_PRESETS[preset], imageSize: 32, imageChannels: 1 };
}

function describeModel(m: ModelConfig): string {
  if ((m as DiTModelConfig).backbone === 'dit') {
    const d = m as DiTModelConfig;
    return `DiT depth ${d.depth}, width ${d.width}, ${d.heads} heads, patch ${d.patch}, ${d.imageSize}x${d.imageSize}x${d.imageChannels}`;
  }
  const u = m as UNetModelConfig;
  return `UNet base ${u.baseChannels}, mults (${u.channelMults.join(',')}), ${u.blocksPerLevel} blocks/level, attention in mid_1, ${u.imageSize}x${u.imageSize}x${u.imageChannels}`;
}

/** Iterations that keep each benchmark at about 1-2 minutes on 2 cores (webgpu: on a GPU). */
function defaultIters(task: Task, backend: BenchBackend): number {
  if (backend === 'cpu') return 1;
  if (backend === 'native' || backend === 'webgpu') return task === 'train' ? 10 : 20;
  return task === 'train' ? 4 : 10;
}

const USAGE =
  'usage: npm run -s bench -- train|features|orchestration [--json] [--model unet|dit-tiny|dit-small] [--backend native|wasm|cpu|webgpu] [--threads N] [--batch N] [--iters N] [--warmup N] [--compare-threads] [--no-torch] [--torch-threads N] [--torch-device auto|cuda|cpu] [--python PATH] [--base N] [--rounds N]';

function parseArgs(argv: string[]): Options {
  const task = argv[0];
  if (task !== 'train' && task !== 'features') throw new Error(USAGE);
  const o: Partial<Options> & { task: Task } = { task, json: false, compareThreads: false, torch: true, backend: 'native', torchDevice: 'auto' };
  const int = (name: string, v: string | undefined): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < (name === '--warmup' ? 0 : 1)) throw new Error(`${name} needs a positive integer, got ${v}\n${USAGE}`);
    return n;
  };
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') o.json = true;
    else if (a === '--compare-threads') o.compareThreads = true;
    else if (a === '--no-torch') o.torch = false;
    else if (a === '--backend') {
      const b = argv[++i] as BenchBackend;
      if (!BENCH_BACKENDS.includes(b)) throw new Error(`--backend ${BENCH_BACKENDS.join('|')}, got ${b}`);
      o.backend = b;
    } else if (a === '--threads') o.threads = int(a, argv[++i]);
    else if (a === '--batch') o.batch = int(a, argv[++i]);
    else if (a === '--iters') o.iters = int(a, argv[++i]);
    else if (a === '--warmup') o.warmup = int(a, argv[++i]);
    else if (a === '--torch-threads') o.torchThreads = int(a, argv[++i]);
    else if (a === '--rounds') o.rounds = int(a, argv[++i]);
    else if (a === '--model') {
      const m = argv[++i];
      if (m === 'unet') delete o.model;
      else if (m === 'dit-tiny' || m === 'dit-small') o.model = ditModel(m);
      else throw new Error(`--model unet|dit-tiny|dit-small, got ${m}\n${USAGE}`);
    } else if (a === '--base') o.base = int(a, argv[++i]);
    else if (a === '--python') {
      o.python = argv[++i];
      if (!o.python) throw new Error(`--python needs a path\n${USAGE}`);
    } else if (a === '--torch-device') {
      const d = argv[++i] as TorchDevice;
      if (!TORCH_DEVICES.includes(d)) throw new Error(`--torch-device ${TORCH_DEVICES.join('|')}, got ${d}`);
      o.torchDevice = d;
    }
    else throw new Error(`unknown option ${a}\n${USAGE}`);
  }
  if (o.compareThreads && o.backend !== 'wasm') throw new Error('--compare-threads compares wasm thread counts: use it with --backend wasm');
  const backend = o.backend as BenchBackend;
  return {
    task,
    json: !!o.json,
    backend,
    threads: o.threads ?? Math.min(8, os.availableParallelism()),
    // The pure-JS cpu backend is ~50x slower than wasm: a smaller default batch, no warm-up.
    batch: o.batch ?? (backend === 'cpu' ? 8 : 64),
    iters: o.iters ?? defaultIters(task, backend),
    warmup: o.warmup ?? (backend === 'cpu' ? 0 : 1),
    compareThreads: !!o.compareThreads,
    rounds: o.rounds ?? 1,
    torch: o.torch !== false,
    torchThreads: o.torchThreads ?? TORCH_THREADS,
    ...(o.model ? { model: o.model } : {}),
    torchDevice: o.torchDevice ?? 'auto',
    ...(o.python ? { python: o.python } : {}),
    base: o.base ?? BASE_MODEL.baseChannels,
  };
}

/** The benchmark model, with `--base` channels (groups shrink with it so that they divide every width). */
function modelOf(o: Options): ModelConfig {
  if (o.model) return o.model;
  return o.base === BASE_MODEL.baseChannels ? BASE_MODEL : { ...BASE_MODEL, baseChannels: o.base, groups: Math.min(BASE_MODEL.groups, o.base) };
}

/** Runs a child and returns its last stdout line parsed, or throws with its stderr. */
function runChild<T>(cmd: string, args: string[], env: NodeJS.ProcessEnv, what: string): T {
  const r = spawnSync(cmd, args, { cwd: ROOT, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  if (r.error) throw new Error(`${what}: ${r.error.message}`);
  if (r.status !== 0 || !line.startsWith('{')) throw new Error(`${what} failed (exit ${r.status}${r.signal ? `, ${r.signal}` : ''}): ${(r.stderr ?? '').trim().split('\n').slice(-5).join(' | ')}`);
  return JSON.parse(line) as T;
}

function runOurs(o: Options, threads: number): BenchChildResult {
  const cfg: BenchChildConfig = { task: o.task, backend: o.backend, model: modelOf(o), batch: o.batch, iters: o.iters, warmup: o.warmup };
  const env = { ...rawEnv(), DDAE_WASM_THREADS: String(threads), DDAE_NATIVE_THREADS: String(threads) };
  // Bundled by scripts/gpu-check.sh (main.cjs beside ours.cjs, no node_modules): the child is a bundle too.
  const child = __filename.endsWith('.cjs') ? [path.join(__dirname, 'ours.cjs')] : ['-r', '@swc-node/register', path.join(__dirname, 'ours.ts')];
  return runChild<BenchChildResult>(process.execPath, [...child, JSON.stringify(cfg)], env, `ours (${o.backend}, ${threads} threads)`);
}

interface TorchResult {
  imgPerSec: number;
  secPerIter: number;
  iters: number;
  params: number;
  threads: number;
  cpuPerWall: number;
  torch: string;
  mkldnn: boolean;
  /** Where the twin computed: `cuda` or `cpu`. */
  device: 'cuda' | 'cpu';
  /** The CUDA device's name. */
  gpu: string | null;
  /** The CUDA version torch was built for (null: a CPU-only build). */
  cuda: string | null;
  /** TF32 allowed on CUDA (never: fp32 against fp32); null on the CPU. */
  tf32: boolean | null;
  python: string;
}

/** The Python for the twin: `--python`, else the first candidate that imports torch (else the first that exists, to say why). */
function findPython(o: Options): string {
  if (o.python) return o.python;
  const runs = (py: string, code: string) => spawnSync(py, ['-c', code], { encoding: 'utf8' }).status === 0;
  const existing = PYTHONS.filter((py) => runs(py, 'import sys'));
  if (existing.length === 0) throw new Error(`no Python found (tried ${PYTHONS.join(', ')})`);
  const withTorch = existing.find((py) => runs(py, 'import torch'));
  if (!withTorch) throw new Error(`torch is not installed for ${existing.join(' or ')} (pip install torch, or pass --python)`);
  return withTorch;
}

function blasInUse(): string {
  try {
    return fs.realpathSync('/usr/lib/x86_64-linux-gnu/libblas.so.3');
  } catch {
    return 'unknown';
  }
}

function runTorch(o: Options, python: string, notes: string[]): TorchResult {
  const env = { ...rawEnv() };
  const coretype = env['OPENBLAS_CORETYPE'];
  delete env['OPENBLAS_CORETYPE'];
  notes.push(
    coretype !== undefined
      ? `OPENBLAS_CORETYPE=${coretype} was unset for the torch process only (it halves OpenBLAS speed on this CPU)`
      : 'OPENBLAS_CORETYPE was not set here; it is unset for the torch process regardless',
  );
  const model = modelOf(o);
  const cfg = { ...model, layout: backboneLayout(backboneOfModelConfig(model), model.imageSize, model.imageChannels), task: o.task, batch: o.batch, iters: Math.max(o.iters, o.task === 'train' ? 10 : 20), warmup: 2, threads: o.torchThreads, device: o.torchDevice };
  const r = runChild<TorchResult>(python, [path.join(__dirname, 'torch_twin.py'), JSON.stringify(cfg)], env, 'torch twin');
  const where =
    r.device === 'cuda'
      ? `on CUDA ${r.cuda} (${r.gpu}), fp32 without TF32, cuDNN autotuner off`
      : `on the CPU (${r.cuda ? `CUDA ${r.cuda} build, no GPU visible` : 'a CPU-only build'}), torch.set_num_threads(${o.torchThreads}), oneDNN ${r.mkldnn ? 'on' : 'off'}, BLAS ${blasInUse()}`;
  notes.push(`torch ${r.torch} via ${r.python} ${where}, ${r.iters} timed iterations after 2 warm-up`);
  return r;
}

const round = (x: number, digits = 3): number => Number(x.toPrecision(digits));

function main(): void {
  let o: Options;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  const say = (line: string): void => {
    if (!o.json) process.stdout.write(`${line}\n`);
  };
  const notes: string[] = [];
  const MODEL = modelOf(o);
  if (!o.model && MODEL !== BASE_MODEL) notes.push(`NOT the benchmark model: base ${(MODEL as UNetModelConfig).baseChannels} channels (--base), for trying the harness only`);
  const loadBefore = os.loadavg().map((x) => round(x, 2));
  const flops = forwardFlopsPerImage(MODEL);
  const perImage = flops.total * (o.task === 'train' ? TRAIN_FLOPS_FACTOR : 1);
  notes.push(
    `FLOPs per image: analytical, ${round(flops.total / 1e6, 4)} MFLOP forward (convolutions ${round((100 * flops.conv) / flops.total, 3)} %, dense ${round((100 * flops.dense) / flops.total, 2)} %, attention products ${round((100 * flops.attention) / flops.total, 2)} %; 2 per multiply-add; norms/activations/adds not counted)${o.task === 'train' ? `; a training step counts ${TRAIN_FLOPS_FACTOR}x forward` : ''}`,
  );
  say(`bench ${o.task}: ${describeModel(MODEL)}, batch ${o.batch}; load ${loadBefore.join(' ')} on ${os.availableParallelism()} CPUs`);

  const gflops = (imgPerSec: number): number => round((perImage * imgPerSec) / 1e9);
  const describe = (r: BenchChildResult): string => `${round(r.imgPerSec)} img/s, ${gflops(r.imgPerSec)} GFLOP/s, ${round(r.secPerIter)} s per batch (${r.iters} timed${r.microBatch !== undefined ? `, micro-batch ${r.microBatch}` : ''}, ${round(r.cpuPerWall, 2)} CPU s per s); ${r.backend}`;
  const oneThread = o.backend === 'cpu' || o.backend === 'webgpu';

  // With --rounds N, ours runs N times (alternating with the single-threaded run when comparing)
  // and the fastest run of each counts: the least disturbed by other load on a shared machine.
  const singles: BenchChildResult[] = [];
  const multis: BenchChildResult[] = [];
  for (let r = 0; r < o.rounds; r++) {
    if (o.compareThreads) {
      singles.push(runOurs(o, 1));
      say(`ours, wasm 1 thread:    ${describe(singles[singles.length - 1])}`);
    }
    multis.push(runOurs(o, oneThread ? 1 : o.threads));
    const m = multis[multis.length - 1];
    say(`ours, ${o.backend}${oneThread ? '' : ` ${m.threads} threads`}:  ${describe(m)}`);
  }
  const best = (runs: BenchChildResult[]): BenchChildResult => runs.reduce((a, b) => (b.imgPerSec > a.imgPerSec ? b : a));
  const single = singles.length ? best(singles) : undefined;
  const ours = best(multis);
  if (o.rounds > 1) notes.push(`best of ${o.rounds} runs of ours per configuration; all img/s: ${o.compareThreads ? `1 thread [${singles.map((r) => round(r.imgPerSec)).join(', ')}], ` : ''}${ours.threads} threads [${multis.map((r) => round(r.imgPerSec)).join(', ')}]`);
  if (o.backend === 'wasm' && o.threads > 1 && ours.threads === 1) notes.push(`asked for ${o.threads} wasm threads, ran single-threaded: ${ours.backend}`);
  if (ours.microBatch !== undefined && ours.microBatch < o.batch) notes.push(`ours trains in micro-batches of ${ours.microBatch} (gradients summed: one optimiser step per batch of ${o.batch}), as pretrain does on wasm (4 GB heap); torch takes the batch at once`);

  let torch: TorchResult | undefined;
  let torchNote: string | undefined;
  let python: string | null = null;
  if (o.torch) {
    try {
      python = findPython(o);
      const torchRuns: TorchResult[] = [];
      for (let r = 0; r < o.rounds; r++) torchRuns.push(runTorch(o, python, r === 0 ? notes : []));
      torch = torchRuns.reduce((a, b) => (b.imgPerSec > a.imgPerSec ? b : a));
      if (o.rounds > 1) notes.push(`best of ${o.rounds} torch runs; all img/s: [${torchRuns.map((r) => round(r.imgPerSec)).join(', ')}]`);
      say(`torch, ${torch.device === 'cuda' ? `CUDA (${torch.gpu})` : `CPU ${torch.threads} threads`}:       ${round(torch.imgPerSec)} img/s, ${gflops(torch.imgPerSec)} GFLOP/s, ${round(torch.secPerIter)} s per batch (${round(torch.cpuPerWall, 2)} CPU s per s)`);
      if (torch.params !== ours.params) notes.push(`parameter counts differ: ours ${ours.params}, torch ${torch.params}`);
      else notes.push(`parameter counts match: ${ours.params}`);
    } catch (err) {
      torchNote = `torch reference unavailable: ${(err as Error).message}`;
      say(torchNote);
    }
  } else {
    torchNote = 'torch reference skipped (--no-torch)';
  }
  const loadAfter = os.loadavg().map((x) => round(x, 2));
  const out: Record<string, unknown> = {
    task: o.task,
    model: { ...MODEL, ...((MODEL as DiTModelConfig).backbone === 'dit' ? {} : { attention: 'mid_1 only' }), batch: o.batch, params: ours.params },
    ours: {
      backend: ours.backend,
      threads: ours.threads,
      imgPerSec: round(ours.imgPerSec),
      gflops: gflops(ours.imgPerSec),
      cpuPerWall: round(ours.cpuPerWall, 2),
      ...(ours.microBatch !== undefined ? { microBatch: ours.microBatch } : {}),
      // On webgpu: the adapter (a software one says fallback: true; its figures are no GPU's).
      ...(ours.gpu ? { gpu: { name: ours.gpu.name, vendor: ours.gpu.vendor, architecture: ours.gpu.architecture, driver: ours.gpu.description, fallback: ours.gpu.fallback } } : {}),
    },
  };
  // Where the reference computed: cuda, cpu, or null when it did not run (reason says why).
  out['reference'] = torch
    ? { device: torch.device, gpu: torch.gpu, cuda: torch.cuda, tf32: torch.tf32, python: torch.python }
    : { device: null, python, reason: torchNote };
  if (torch) {
    out['torch'] = { imgPerSec: round(torch.imgPerSec), gflops: gflops(torch.imgPerSec), threads: torch.threads, cpuPerWall: round(torch.cpuPerWall, 2), version: torch.torch, device: torch.device };
    out['slowdown'] = round(torch.imgPerSec / ours.imgPerSec);
    say(`slowdown (torch img/s / ours img/s): ${round(torch.imgPerSec / ours.imgPerSec)}x`);
  } else {
    out['note'] = torchNote;
  }
  if (single) {
    const speedup = round(ours.imgPerSec / single.imgPerSec);
    out['threads'] = {
      single: { backend: single.backend, imgPerSec: round(single.imgPerSec), gflops: gflops(single.imgPerSec), cpuPerWall: round(single.cpuPerWall, 2) },
      multi: { backend: ours.backend, threads: ours.threads, imgPerSec: round(ours.imgPerSec), gflops: gflops(ours.imgPerSec), cpuPerWall: round(ours.cpuPerWall, 2) },
      speedup,
    };
    say(`wasm ${ours.threads} threads vs 1: ${speedup}x`);
  }
  out['flopsPerImage'] = perImage;
  out['load'] = { before: loadBefore, after: loadAfter, cpus: os.availableParallelism() };
  out['machine'] = machine();
  out['notes'] = notes;
  if (!o.json) for (const n of notes) say(`note: ${n}`);
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

if (process.argv[2] === 'orchestration') {
  runOrchestrationBench(process.argv.slice(3)).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
} else {
  main();
}

/** The CPU the figures belong to: its model name and the vector extensions that decide the kernels' speed. */
function machine(): { cpu: string; simd: string[] } {
  let flags: string[] = [];
  try {
    const line = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
    flags = line ? line.split(':')[1].trim().split(/\s+/) : [];
  } catch {
    // not Linux: the model name alone
  }
  const simd = ['avx512f', 'avx2', 'fma'].filter((f) => flags.includes(f));
  return { cpu: os.cpus()[0]?.model ?? 'unknown', simd };
}
