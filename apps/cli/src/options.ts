import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './api-client';

type Options = NonNullable<ParseArgsConfig['options']>;
const str = { type: 'string' } as const;
const flag = { type: 'boolean', default: false } as const;

/** Options every command takes. */
export const GLOBAL_OPTIONS = {
  api: str,
  token: str,
  json: flag,
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies Options;

const PROBE = {
  features: str, dataset: str, checkpoint: str, layers: str, noise: str, pooling: str, epochs: str, batch: str, lr: str, seed: str,
  'noise-seed': str, 'train-size': str, 'test-size': str, standardize: str, protocol: str, 'noise-protocol': str, labels: str, augment: str, cache: str, 'data-dir': str, backend: str, gpu: str,
} as const satisfies Options;
const { labels: _labels, augment: _augment, ...PROBE_WITHOUT_LABELS } = PROBE;

/**
 * The options of each command (`sweep submit`, `leaderboard`...), beside the global ones: a command
 * given an option that is not its own is a usage error naming its options, never silently ignored.
 */
export const COMMAND_OPTIONS = {
  'sweep submit': { 'dry-run': flag, 'idempotency-key': str, wait: flag },
  'sweep status': {},
  'sweep watch': {},
  'sweep list': { status: str, limit: str },
  'sweep cancel': {},
  'sweep pause': {},
  'sweep resume': {},
  'sweep retry-failed': {},
  progress: { out: str },
  verdict: { summary: str, seconds: str, labels: str },
  leaderboard: { dataset: str, method: str, sweep: str, per: str, limit: str, cursor: str, labels: str },
  heatmap: { out: str, from: str, labels: str, baseline: str, title: str },
  export: { format: str, out: str },
  workers: {},
  token: { name: str, scope: str },
  cache: { cache: str, checkpoint: str, 'older-than': str, 'dry-run': flag },
  probe: PROBE,
  // Every probe option but the label budgets (the search ranks noise levels with all labels).
  'noise-search': { ...PROBE_WITHOUT_LABELS, coarse: str, 'min-step': str },
  pretrain: {
    dataset: str, method: str, unet: str, backbone: str, preset: str, dit: str, steps: str, batch: str, lr: str, warmup: str, 'ema-cap': str, seed: str, 'train-size': str, 'image-size': str,
    'checkpoint-every': str, 'data-dir': str, out: str, backend: str, gpu: str,
    'probe-every': str, 'probe-noise': str, 'probe-layers': str, 'probe-train-size': str, 'probe-test-size': str, 'probe-epochs': str, 'probe-pooling': str,
    patience: str, 'min-delta': str,
  },
  import: { backbone: str, preset: str, unet: str, dit: str, method: str, dataset: str, 'image-size': str, out: str },
  sample: { checkpoint: str, n: str, steps: str, seed: str, batch: str, eta: str, out: str, backend: str, gpu: str, weights: str },
  fid: { checkpoint: str, samples: str, steps: str, seed: str, batch: str, 'kid-subsets': str, 'kid-subset-size': str, backend: str, gpu: str },
} as const satisfies Record<string, Options>;

/** Every option of every command: the first pass reads the command line with them to find the command. */
const ALL_OPTIONS = Object.assign({}, GLOBAL_OPTIONS, ...Object.values(COMMAND_OPTIONS)) as typeof GLOBAL_OPTIONS & UnionToIntersection<(typeof COMMAND_OPTIONS)[keyof typeof COMMAND_OPTIONS]>;
type UnionToIntersection<U> = (U extends unknown ? (k: U) => void : never) extends (k: infer I) => void ? I : never;

/** `sweep list` for `sweep list ...`, `leaderboard` for `leaderboard ...`; undefined for an unknown command. */
export function commandKey(positionals: string[]): keyof typeof COMMAND_OPTIONS | undefined {
  const [command, sub] = positionals;
  const key = command === 'sweep' ? `sweep ${sub}` : command;
  return key !== undefined && key in COMMAND_OPTIONS ? (key as keyof typeof COMMAND_OPTIONS) : undefined;
}

/**
 * Reads a command line: the command (its positionals), then its options checked against that
 * command's own list. `sweep list --steps 9` is a UsageError naming `sweep list`'s options.
 */
export function parseCommandLine(argv: string[]) {
  const parsed = parseArgs({ args: argv, allowPositionals: true, options: ALL_OPTIONS, tokens: true });
  const key = commandKey(parsed.positionals);
  if (key !== undefined) {
    const own: Options = { ...GLOBAL_OPTIONS, ...COMMAND_OPTIONS[key] };
    const foreign = [...new Set(parsed.tokens.flatMap((t) => (t.kind === 'option' && !(t.name in own) ? [t.rawName] : [])))];
    if (foreign.length > 0) {
      const names = Object.keys(COMMAND_OPTIONS[key]).map((n) => `--${n}`);
      throw new UsageError(
        `${key} does not take ${foreign.join(', ')}: its options are ${names.length ? names.join(', ') : 'none'} (and --api, --token, --json, --help); npm run ddae -- help ${key.split(' ')[0]}`,
      );
    }
  }
  return parsed;
}
