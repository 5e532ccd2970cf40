import { cliEnvSchema, loadEnv } from '@ddae/config';
import { CliError, cliApiClient, UsageError } from './api-client';
import { exportResults } from './commands/export.command';
import { helpOf, USAGE } from './help';
import { parseCommandLine } from './options';
import { heatmapFromProbeFiles, heatmapPng } from './commands/heatmap.command';
import { importInline } from './commands/import.command';
import { leaderboard, workers } from './commands/leaderboard.command';
import { pretrainInline } from './commands/pretrain.command';
import { cacheCommand } from './commands/cache.command';
import { noiseSearchInline } from './commands/noise-search.command';
import { probeInline } from './commands/probe.command';
import { sweepProgress, sweepProgressPng } from './commands/progress.command';
import { sweepVerdict } from './commands/verdict.command';
import { sampleInline } from './commands/sample.command';
import { fidInline } from './commands/fid.command';
import { tokenCommand } from './commands/token.command';
import { cancelSweep, listSweeps, pauseSweep, renderSweep, retryFailed, submitSweep, sweepStatus, waitForSweep } from './commands/sweep.command';

/** Runs one command; resolves with what to print on stdout (undefined: the command wrote its own output). */
async function main(argv: string[]): Promise<string | undefined> {
  const { values, positionals } = parseCommandLine(argv);
  const [command, sub, arg] = positionals;
  if (!command) {
    if (values.help) return USAGE;
    throw new UsageError(`no command given\n\n${USAGE}`);
  }
  if (command === 'help') {
    if (!sub) return USAGE;
    return helpOf(sub) ?? failUnknown(sub);
  }
  if (values.help) return helpOf(command) ?? failUnknown(command);
  const env = loadEnv(cliEnvSchema);
  const api = cliApiClient(values.api ?? env.DDAE_API_URL, values.token ?? env.DDAE_API_TOKEN);
  const json = values.json ?? false;
  switch (command) {
    case 'sweep':
      switch (sub) {
        case 'submit': {
          if (!arg) throw new UsageError('sweep submit needs a spec file: npm run ddae -- sweep submit examples/fashion-mnist.yaml');
          const out = await submitSweep(api, arg, { dryRun: values['dry-run'] ?? false, idempotencyKey: values['idempotency-key'], json });
          if (!values.wait || !out.submitted) return out.text;
          process.stdout.write(`${out.text}\n`);
          const final = await waitForSweep(api, out.submitted.id, { intervalMs: 2_000, timeoutMs: 24 * 3600_000, print: (l) => process.stderr.write(`${l}\n`) });
          return json ? JSON.stringify(final) : renderSweep(final);
        }
        case 'status':
          if (!arg) throw new UsageError('sweep status needs a sweep id: npm run ddae -- sweep status <id>');
          return sweepStatus(api, arg, { json });
        case 'watch': {
          if (!arg) throw new UsageError('sweep watch needs a sweep id: npm run ddae -- sweep watch <id>');
          const final = await waitForSweep(api, arg, { intervalMs: 3_000, timeoutMs: 7 * 24 * 3600_000, print: (l) => process.stderr.write(`${l}\n`) });
          if (final.status !== 'SUCCEEDED') process.exitCode = 1;
          return json ? JSON.stringify(final) : `sweep ${final.id} ${final.status}`;
        }
        case 'list':
          return listSweeps(api, { status: values.status, limit: values.limit, json });
        case 'cancel':
          if (!arg) throw new UsageError('sweep cancel needs a sweep id: npm run ddae -- sweep cancel <id>');
          return cancelSweep(api, arg, { json });
        case 'pause':
        case 'resume':
          if (!arg) throw new UsageError(`sweep ${sub} needs a sweep id: npm run ddae -- sweep ${sub} <id>`);
          return pauseSweep(api, arg, sub, { json });
        case 'retry-failed':
          if (!arg) throw new UsageError('sweep retry-failed needs a sweep id: npm run ddae -- sweep retry-failed <id>');
          return retryFailed(api, arg, { json });
        default:
          throw new UsageError(`${sub === undefined ? 'sweep needs a command' : `unknown sweep command "${sub}"`}: use submit, status, watch, list, cancel, pause, resume or retry-failed (npm run ddae -- help sweep)`);
      }
    case 'progress':
      if (!sub) throw new UsageError('progress needs a sweep id: npm run ddae -- progress <id>');
      if (values.out !== undefined) return sweepProgressPng(api, sub, { out: values.out, json });
      return sweepProgress(api, sub, { json });
    case 'verdict':
      if (!sub) throw new UsageError('verdict needs a sweep id: npm run ddae -- verdict <id>');
      return sweepVerdict(api, sub, { json, summary: values.summary, seconds: values.seconds, labels: values.labels });
    case 'leaderboard':
      return leaderboard(api, { dataset: values.dataset, method: values.method, sweep: values.sweep, per: values.per, limit: values.limit, cursor: values.cursor, labels: values.labels, json });
    case 'heatmap':
      if (values.from !== undefined) {
        return heatmapFromProbeFiles(values.from.split(',').map((f) => f.trim()).filter(Boolean), { labels: values.labels, baseline: values.baseline, title: values.title, out: values.out, json });
      }
      if (!sub) throw new UsageError('heatmap needs a sweep id: npm run ddae -- heatmap <id> --out heatmap.png');
      return heatmapPng(api, sub, { out: values.out, labels: values.labels, json });
    case 'export':
      if (!sub) throw new UsageError('export needs a sweep id: npm run ddae -- export <id> --format csv --out results.csv');
      return exportResults(api, sub, { format: values.format, out: values.out });
    case 'workers':
      return workers(api, { json });
    case 'token':
      return tokenCommand(sub, arg, { name: values.name, scope: values.scope, json, databaseUrl: env.DATABASE_URL });
    case 'probe':
      if (sub !== undefined) throw new UsageError(`probe takes options only, got "${sub}" (npm run ddae -- help ${command} lists them)`);
      return probeInline(values, { json });
    case 'cache':
      return cacheCommand(sub, { cache: values.cache, checkpoint: values.checkpoint, 'older-than': values['older-than'], 'dry-run': values['dry-run'] }, { json });
    case 'noise-search':
      if (sub !== undefined) throw new UsageError(`noise-search takes options only, got "${sub}" (npm run ddae -- help ${command} lists them)`);
      return noiseSearchInline(values, { json });
    case 'import':
      if (arg !== undefined) throw new UsageError(`import takes one safetensors file, got "${sub}" and "${arg}"`);
      return importInline(sub, values, { json });
    case 'pretrain':
    case 'sample':
      if (sub !== undefined) throw new UsageError(`${command} takes options only, got "${sub}" (npm run ddae -- help ${command} lists them)`);
      return command === 'pretrain' ? pretrainInline(values, { json }) : sampleInline(values, { json });
    case 'fid':
      if (sub !== undefined) throw new UsageError(`fid takes options only, got "${sub}" (npm run ddae -- help fid lists them)`);
      return fidInline(values, { json });
    default:
      return failUnknown(command);
  }
}

function failUnknown(command: string): never {
  throw new UsageError(`unknown command "${command}" (npm run ddae -- help lists them)`);
}

main(process.argv.slice(2)).then(
  (out) => {
    if (out !== undefined) process.stdout.write(`${out}\n`);
  },
  (error: unknown) => {
    const parseError = (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true;
    if (error instanceof CliError || parseError) {
      process.stderr.write(`ddae: ${(error as Error).message}${parseError ? ' (npm run ddae -- help <command> lists its options)' : ''}\n`);
    } else {
      process.stderr.write(`ddae: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    }
    // 2: the command line itself was wrong (usage); 1: the command failed.
    process.exitCode = error instanceof UsageError || parseError ? 2 : 1;
  },
);
