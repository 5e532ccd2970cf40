import { protocolKey } from '@ddae/contracts';
import { CliError } from '../api-client';
import { numberOption, parseBackend } from './pretrain.command';
import { featureCacheDirOf, probeTarget, type ProbeArgs } from './probe.command';

export interface NoiseSearchArgs extends ProbeArgs {
  coarse?: string;
  'min-step'?: string;
}

interface Measured {
  noiseLevel: number;
  /** Best accuracy over the probed layers. */
  accuracy: number;
  layer: string;
  seconds: number;
  /** Every probed layer at this level (the heatmap's cells). */
  cells: { layer: string; noiseLevel: number; accuracy: number; featureDim: number }[];
}

/**
 * `noise-search`: measures the adaptive noise search against the full grid on ONE checkpoint, inline
 * (no services), with the workers' code. The search runs first, round by round, exactly as the
 * orchestrator drives it (sweeps' nextNoiseLevels); then every grid level it skipped is probed. A
 * level's probe is deterministic (fixed seeded noise, seeded probe), so the grid reuses the
 * search's measurements instead of repeating them. Reports both job counts and best levels.
 */
export async function noiseSearchInline(a: NoiseSearchArgs, opts: { json: boolean; log?: (line: string) => void }): Promise<string> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  if (!a.checkpoint) throw new CliError('noise-search needs --checkpoint <dir> and --noise <grid>: npm run -s ddae -- noise-search --checkpoint tmp/ddpm --noise 1,2,3,5,8,11,15,20,25,30,40,50 --json');
  const coarse = numberOption('coarse', a.coarse, { int: true, min: 2, max: 32, example: '4' }) ?? 4;
  const minStep = numberOption('min-step', a['min-step'], { min: 0, example: '0' }) ?? 0;
  const prefer = parseBackend(a.backend);
  const target = await probeTarget(a);
  if (target.protocol.probe === 'finetune') throw new CliError('noise-search ranks linear probes: --protocol finetune is for probe, on the cell the search found');
  const { nextNoiseLevels, searchGrid } = await import('@ddae/sweeps');
  const { selectBackend, runProbeTask } = await import('@ddae/compute');
  const grid = searchGrid(target.levels);
  if (grid.length < 2) throw new CliError('--noise needs at least 2 levels: the grid to search');
  const backend = await selectBackend(prefer);
  const featureCacheDir = featureCacheDirOf(a.cache);
  const noise = target.method === 'ddpm' ? 't' : 'sigma';
  log(`noise search on ${target.found.path} (${target.method}, step ${target.step}): grid ${grid.join(', ')}, coarse ${coarse}, backend ${backend.backend}`);

  const measured = new Map<number, Measured>();
  const measure = async (noiseLevel: number): Promise<Measured> => {
    const r = await runProbeTask(target.task(noiseLevel, featureCacheDir), {});
    const best = [...r.layers].sort((x, y) => y.accuracy - x.accuracy)[0];
    const cells = r.layers.map((l) => ({ layer: l.layer, noiseLevel, accuracy: l.accuracy, featureDim: l.featureDim }));
    const m = { noiseLevel, accuracy: best.accuracy, layer: best.layer, seconds: r.seconds, cells };
    measured.set(noiseLevel, m);
    log(`  ${noise}=${noiseLevel}: ${(100 * m.accuracy).toFixed(2)} % (${m.layer}, ${r.seconds.toFixed(1)} s)`);
    return m;
  };

  const rounds: number[][] = [];
  const probed = new Map<number, number>();
  for (;;) {
    const step = nextNoiseLevels(grid, probed, { coarse, minStep });
    if (step.next.length === 0) break;
    rounds.push(step.next);
    log(`search round ${rounds.length}: ${step.next.join(', ')}`);
    for (const level of step.next) probed.set(level, (await measure(level)).accuracy);
  }
  const searchLevels = [...probed.keys()];
  const searchBest = bestOf(searchLevels.map((l) => measured.get(l) as Measured));
  const searchSeconds = searchLevels.reduce((s, l) => s + (measured.get(l) as Measured).seconds, 0);
  log(`search: ${searchLevels.length} probe jobs, best ${noise}=${searchBest.noiseLevel} ${(100 * searchBest.accuracy).toFixed(2)} %; now the rest of the grid`);
  for (const level of grid) if (!measured.has(level)) await measure(level);
  const gridBest = bestOf(grid.map((l) => measured.get(l) as Measured));
  const gridSeconds = grid.reduce((s, l) => s + (measured.get(l) as Measured).seconds, 0);
  const gap = gridBest.accuracy - searchBest.accuracy;
  const summary = ({ cells: _cells, ...m }: Measured) => m;
  const result = {
    checkpoint: target.found.path,
    method: target.method,
    step: target.step,
    dataset: target.dataset,
    layers: target.layers,
    protocolKey: protocolKey(target.protocol),
    backend: backend.backend,
    grid: { levels: grid, jobs: grid.length, best: summary(gridBest), seconds: gridSeconds, accuracies: grid.map((l) => ({ noiseLevel: l, accuracy: (measured.get(l) as Measured).accuracy })) },
    adaptive: { coarse, minStep, jobs: searchLevels.length, rounds, best: summary(searchBest), seconds: searchSeconds },
    jobRatio: searchLevels.length / grid.length,
    foundGridBest: searchBest.noiseLevel === gridBest.noiseLevel,
    accuracyGap: gap,
    withinHalfPoint: gap <= 0.005,
    reused: searchLevels.length,
    // Every (layer, level) of the grid, as `probe --json` prints them: `heatmap --from` reads this file too.
    cells: grid.flatMap((l) => (measured.get(l) as Measured).cells),
    // The last line's `accuracy` is the search's best, as for `probe`.
    accuracy: searchBest.accuracy,
  };
  if (opts.json) return JSON.stringify(result);
  return [
    `grid:     ${grid.length} jobs, best ${noise}=${gridBest.noiseLevel} ${(100 * gridBest.accuracy).toFixed(2)} % (${gridBest.layer})`,
    `adaptive: ${searchLevels.length} jobs in ${rounds.length} rounds (${(100 * result.jobRatio).toFixed(0)} % of the grid), best ${noise}=${searchBest.noiseLevel} ${(100 * searchBest.accuracy).toFixed(2)} %`,
    `gap to the grid's best: ${(100 * gap).toFixed(2)} points${result.foundGridBest ? ' (same level)' : ''}`,
  ].join('\n');
}

/** The most accurate measurement; the lowest noise level on ties. */
function bestOf(ms: Measured[]): Measured {
  return ms.reduce((b, m) => (m.accuracy > b.accuracy || (m.accuracy === b.accuracy && m.noiseLevel < b.noiseLevel) ? m : b));
}
