/**
 * The orchestrator's reads and submit at scale, over real HTTP against the API app:
 *   npm run -s bench -- orchestration [--json] [--rows N] [--requests N] [--jobs N] [--only job] [--keep]
 * Creates its own database (dropped at the end unless --keep), seeds it with set-based SQL
 * (generate_series) to about 10,000 probe results, times every view, then to --rows (default
 * 1,000,000) and times them again, in the same run; then submits the largest sweep the limits
 * allow. The last stdout line is one JSON object:
 *   {"rows", "views": {"<name>": {"p50Ms", "p95Ms", "p95MsAt10k", "growth"}}, "submit": {"cells", "runs", "ms"}, "job", ...}
 * where growth = p95 at --rows / p95 at 10k. `job`: a real worker (the compiled dist/worker, built if
 * stale) runs --jobs tiny jobs (pretrain of the tiny UNet for 2 steps, then one probe of one layer,
 * per seed) from the same database and queue; per job, overhead = its time in the worker (BullMQ's
 * processedOn to finishedOn) minus the compute time its child reports, medians over the jobs after
 * the first (which starts the compute child); jobsPerSecond over all of them, first taken to last done. Each sweep has the same shape at both sizes (11 runs:
 * two models x 5 seeds and an untrained control, 9 layers x 50 noise levels each, 4,950 results):
 * the larger database has more sweeps, which is what history adds.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import { DEFAULT_DATABASE_URL, rawEnv } from '@ddae/config';
import { createPrismaClient, rebuildSummaries } from '@ddae/db';
import { decoderBlockNames, protocolKey, QUEUES, resolveUNet, SPEC_LIMITS, sweepSpecSchema, type ProbeProtocol } from '@ddae/contracts';

const ROOT = path.resolve(__dirname, '..');
const USAGE = 'usage: npm run -s bench -- orchestration [--json] [--rows N (default 1000000)] [--requests N (default 100)] [--jobs N (default 20; 0: none)] [--only job] [--keep]';

interface Options {
  json: boolean;
  rows: number;
  requests: number;
  keep: boolean;
  /** Tiny jobs a real worker runs for the `job` figures (0: not measured). */
  jobs: number;
  /** `job`: only the job figures (no seeding, no views, no submit). */
  only?: 'job';
}

function parseArgs(argv: string[]): Options {
  const o: Options = { json: false, rows: 1_000_000, requests: 100, keep: false, jobs: 20 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const int = (): number => {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${a} needs a positive integer, got ${argv[i]}\n${USAGE}`);
      return n;
    };
    if (a === '--json') o.json = true;
    else if (a === '--keep') o.keep = true;
    else if (a === '--rows') o.rows = int();
    else if (a === '--requests') o.requests = int();
    else if (a === '--jobs') o.jobs = argv[i + 1] === '0' ? (i++, 0) : int();
    else if (a === '--only') {
      if (argv[++i] !== 'job') throw new Error(`--only takes job, got ${argv[i]}\n${USAGE}`);
      o.only = 'job';
    }
    else throw new Error(`unknown option ${a}\n${USAGE}`);
  }
  if (o.rows < SMALL_ROWS) throw new Error(`--rows must be at least ${SMALL_ROWS} (the small measurement)\n${USAGE}`);
  return o;
}

/** The small database every view is also timed on: growth = p95 at --rows / p95 here. */
const SMALL_ROWS = 10_000;
/** One seeded sweep: two models x SEEDS seeds and the first model's untrained control; LAYERS x LEVELS cells per run. */
const SEEDS = 5;
const LAYERS = decoderBlockNames({ ...resolveUNet('small'), imageSize: 32, imageChannels: 1 });
const LEVELS = 50;
const RUNS_PER_SWEEP = 2 * SEEDS + 1;
const RESULTS_PER_SWEEP = RUNS_PER_SWEEP * LAYERS.length * LEVELS;

const PROTOCOL: ProbeProtocol = { pooling: 'gap', noise: 'fixed', noiseSeed: 0, probe: 'fast', epochs: 15, batchSize: 128, learningRate: 1e-3, standardize: true, trainSize: 10000, testSize: 10000, probeSeed: 0 };

const serverUrl = (): URL => new URL(rawEnv()['DATABASE_URL'] ?? DEFAULT_DATABASE_URL);
const REDIS_URL = rawEnv()['REDIS_URL'] ?? 'redis://127.0.0.1:6379';

function pgClient(database: string): Client {
  const u = serverUrl();
  return new Client({ host: u.hostname, port: Number(u.port || 5432), user: decodeURIComponent(u.username || 'postgres'), password: u.password ? decodeURIComponent(u.password) : undefined, database, application_name: 'ddae-bench' });
}

function databaseUrl(database: string): string {
  const u = serverUrl();
  u.pathname = `/${database}`;
  return u.toString();
}

async function admin(sql: string): Promise<void> {
  const c = pgClient('postgres');
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A valid spec of the seeded shape (stored with each sweep, as a submitted one would be). */
function seededSpec(dataset: string): unknown {
  return sweepSpecSchema.parse({
    name: 'bench',
    dataset,
    models: [
      { name: 'ddpm-small', method: 'ddpm', unet: 'small' },
      { name: 'edm-small', method: 'edm', unet: 'small' },
    ],
    pretrain: { steps: 400, seeds: Array.from({ length: SEEDS }, (_, i) => i) },
    probe: { layers: 'all', timesteps: ddpmLevels(), sigmas: edmLevels(), trainSize: 10000, testSize: 10000 },
    baselines: ['pixels', 'untrained'],
  });
}
const ddpmLevels = (): number[] => Array.from({ length: LEVELS }, (_, i) => 1 + 20 * i);
const edmLevels = (): number[] => Array.from({ length: LEVELS }, (_, i) => Math.round(0.002 * 1.24 ** i * 1e6) / 1e6);

/**
 * Adds `sweeps` sweeps of the seeded shape, set-based: a handful of INSERT ... SELECT over
 * generate_series. probe_results' secondary indexes are dropped first and built again after (what a
 * bulk load does); the summary rows come from `rebuildSummaries`, the backfill of libs/db.
 */
async function seed(c: Client, sweeps: number, offset: number): Promise<{ seedMs: number; indexMs: number; backfillMs: number }> {
  const t0 = performance.now();
  await c.query(`SET maintenance_work_mem = '256MB'`);
  await c.query(`SELECT setseed(0.${offset + 1})`);
  const specs = { 'fashion-mnist': JSON.stringify(seededSpec('fashion-mnist')), mnist: JSON.stringify(seededSpec('mnist')) };
  await c.query('DROP TABLE IF EXISTS bench_sweeps');
  await c.query(`CREATE TEMP TABLE bench_sweeps AS SELECT gen_random_uuid() AS id, g AS n, CASE WHEN g % 4 = 0 THEN 'mnist' ELSE 'fashion-mnist' END AS dataset FROM generate_series($1::int + 1, $1::int + $2::int) g`, [offset, sweeps]);
  await c.query(
    `INSERT INTO sweeps (id, name, dataset, spec, spec_hash, status, priority, created_at, updated_at, finished_at)
     SELECT id, 'bench-' || n, dataset, jsonb_set(CASE WHEN dataset = 'mnist' THEN $2::jsonb ELSE $1::jsonb END, '{name}', to_jsonb('bench-' || n)),
            md5(n::text), 'SUCCEEDED', 5, now() - make_interval(mins => 100000 - n), now(), now()
     FROM bench_sweeps`,
    [specs['fashion-mnist'], specs.mnist],
  );
  const unet = JSON.stringify(resolveUNet('small'));
  await c.query(
    `INSERT INTO runs (id, sweep_id, key, model_name, method, unet, parameters, dataset, seed, untrained, hyper, steps, steps_done, last_loss, status, attempts, worker_id, backend, started_at, finished_at, created_at, updated_at)
     SELECT gen_random_uuid(), s.id, m.model || CASE WHEN k = 10 THEN '-untrained' ELSE '' END || '-s' || (k % $3::int), m.model, m.method, $1::jsonb, 1046113, s.dataset, k % $3::int, k = 10,
            jsonb_build_object('steps', CASE WHEN k = 10 THEN 0 ELSE 400 END, 'batchSize', 64, 'learningRate', 0.001), CASE WHEN k = 10 THEN 0 ELSE 400 END, CASE WHEN k = 10 THEN 0 ELSE 400 END,
            0.05, 'SUCCEEDED', 1, 'bench-worker', 'native', now(), now(), now(), now()
     FROM bench_sweeps s CROSS JOIN generate_series(0, $2::int - 1) k
     CROSS JOIN LATERAL (SELECT CASE WHEN k >= $3::int AND k < 2 * $3::int THEN 'edm-small' ELSE 'ddpm-small' END AS model,
                                CASE WHEN k >= $3::int AND k < 2 * $3::int THEN 'edm' ELSE 'ddpm' END AS method) m`,
    [unet, RUNS_PER_SWEEP, SEEDS],
  );
  await c.query(
    `INSERT INTO checkpoints (id, run_id, step, path, sha256, loss, final, created_at)
     SELECT gen_random_uuid(), r.id, r.steps, 'runs/' || r.id || '/final', repeat('f', 64), 0.05, true, now()
     FROM runs r JOIN bench_sweeps s ON s.id = r.sweep_id`,
  );
  const protocol = JSON.stringify(PROTOCOL);
  const key = protocolKey(PROTOCOL);
  await c.query(
    `INSERT INTO probe_tasks (id, sweep_id, run_id, noise_level, layers, protocol, protocol_key, status, attempts, worker_id, started_at, finished_at, created_at, updated_at)
     SELECT gen_random_uuid(), r.sweep_id, r.id, CASE WHEN r.method = 'ddpm' THEN ($5::float8[])[i] ELSE ($6::float8[])[i] END,
            $1::text[], $2::jsonb, $3, 'SUCCEEDED', 1, 'bench-worker', now(), now(), now(), now()
     FROM runs r JOIN bench_sweeps s ON s.id = r.sweep_id CROSS JOIN generate_series(1, $4::int) i`,
    [LAYERS, protocol, key, LEVELS, ddpmLevels(), edmLevels()],
  );
  const indexes = (await c.query<{ indexname: string; indexdef: string }>(`SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'probe_results' AND indexname <> 'probe_results_pkey'`)).rows;
  for (const i of indexes) await c.query(`DROP INDEX "${i.indexname}"`);
  await c.query(
    `INSERT INTO probe_results (id, checkpoint_id, layer, noise_level, protocol_key, protocol, noise_protocol, probe_protocol, pooling, accuracy, train_accuracy, feature_dim,
                                sweep_id, run_id, probe_task_id, dataset, method, untrained, backend, worker_id, created_at, updated_at)
     SELECT gen_random_uuid(), c.id, l.layer, t.noise_level, t.protocol_key, t.protocol, 'fixed', 'fast', 'gap',
            round((0.55 + 0.3 * random() - CASE WHEN r.untrained THEN 0.08 ELSE 0 END)::numeric, 4)::float8, NULL, 64 * l.depth,
            t.sweep_id, t.run_id, t.id, r.dataset, r.method, r.untrained, 'native', 'bench-worker',
            now() - make_interval(secs => (random() * 86400 * 30)::int), now()
     FROM probe_tasks t JOIN bench_sweeps s ON s.id = t.sweep_id JOIN runs r ON r.id = t.run_id
     JOIN checkpoints c ON c.run_id = r.id AND c.final
     CROSS JOIN LATERAL unnest(t.layers) WITH ORDINALITY AS l(layer, depth)`,
  );
  const t1 = performance.now();
  for (const i of indexes) await c.query(i.indexdef);
  const t2 = performance.now();
  await c.query(`INSERT INTO baselines (id, dataset, kind, protocol_key, protocol, status, accuracy, feature_dim, attempts, backend, worker_id, started_at, finished_at, created_at, updated_at)
     SELECT gen_random_uuid(), d, 'pixels', $1, $2::jsonb, 'SUCCEEDED', 0.826, 784, 1, 'native', 'bench-worker', now(), now(), now(), now()
     FROM unnest(ARRAY['fashion-mnist', 'mnist']) d ON CONFLICT DO NOTHING`, [key, protocol]);
  await c.query(`INSERT INTO sweep_baselines (sweep_id, baseline_id) SELECT s.id, b.id FROM bench_sweeps s JOIN baselines b ON b.dataset = s.dataset AND b.kind = 'pixels'`);
  // The summaries: rebuildSummaries, the backfill the live code keeps (the old backfill migration
  // predates label budgets and its conflict keys no longer match the tables).
  const prisma = createPrismaClient(databaseUrl(c.database ?? ''), { max: 1 });
  try {
    await rebuildSummaries(prisma);
  } finally {
    await prisma.$disconnect();
  }
  const t3 = performance.now();
  await c.query('ANALYZE');
  return { seedMs: Math.round(t1 - t0), indexMs: Math.round(t2 - t1), backfillMs: Math.round(t3 - t2) };
}

interface ViewTiming {
  p50Ms: number;
  p95Ms: number;
}

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
const round1 = (x: number): number => Math.round(x * 10) / 10;

/** GETs `paths(i)` for i = 0..n-1 after 3 untimed warm-ups; times each request to its last byte. */
async function time(base: string, paths: (i: number) => string, n: number): Promise<ViewTiming> {
  const get = async (p: string) => {
    const res = await fetch(base + p);
    const body = await res.text();
    if (res.status !== 200) throw new Error(`GET ${p}: ${res.status} ${body.slice(0, 300)}`);
    return body;
  };
  for (let i = 0; i < 3; i++) await get(paths(i));
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await get(paths(i));
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  return { p50Ms: round1(quantile(ms, 0.5)), p95Ms: round1(quantile(ms, 0.95)) };
}

/** The cursor of page `pages + 1` of a ranking (limit 20): the request a reader paging down makes. */
async function deepCursor(base: string, query: string, pages: number): Promise<string> {
  let cursor = '';
  for (let p = 0; p < pages; p++) {
    const res = (await (await fetch(`${base}/api/leaderboard?${query}${cursor ? `&cursor=${cursor}` : ''}`)).json()) as { nextCursor: string | null };
    if (!res.nextCursor) break;
    cursor = encodeURIComponent(res.nextCursor);
  }
  return cursor;
}

async function timeViews(base: string, c: Client, n: number): Promise<Record<string, ViewTiming>> {
  const sweepIds = (await c.query<{ id: string }>('SELECT id FROM sweeps ORDER BY created_at DESC')).rows.map((r) => r.id);
  const sweep = (i: number) => sweepIds[i % sweepIds.length];
  const cellCursor = await deepCursor(base, 'limit=20', 10);
  const configCursor = await deepCursor(base, 'per=config&limit=20', 10);
  const views: Record<string, (i: number) => string> = {
    'leaderboard': () => '/api/leaderboard',
    'leaderboard?dataset': () => '/api/leaderboard?dataset=fashion-mnist',
    'leaderboard?method': () => '/api/leaderboard?method=edm',
    'leaderboard?dataset&method': () => '/api/leaderboard?dataset=mnist&method=edm',
    'leaderboard?sweep': (i) => `/api/leaderboard?sweep=${sweep(i)}`,
    'leaderboard?cursor (page 11)': () => `/api/leaderboard?limit=20&cursor=${cellCursor}`,
    'leaderboard?per=run': () => '/api/leaderboard?per=run',
    'leaderboard?per=run&dataset': () => '/api/leaderboard?per=run&dataset=mnist',
    'leaderboard?per=config': () => '/api/leaderboard?per=config',
    'leaderboard?per=config&dataset&method': () => '/api/leaderboard?per=config&dataset=fashion-mnist&method=ddpm',
    'leaderboard?per=config&cursor (page 11)': () => `/api/leaderboard?per=config&limit=20&cursor=${configCursor}`,
    'heatmap': (i) => `/api/sweeps/${sweep(i)}/heatmap`,
    'verdict': (i) => `/api/sweeps/${sweep(i)}/verdict`,
    'sweep status': (i) => `/api/sweeps/${sweep(i)}`,
    'sweep list': () => '/api/sweeps',
  };
  const out: Record<string, ViewTiming> = {};
  for (const [name, paths] of Object.entries(views)) out[name] = await time(base, paths, n);
  return out;
}

/**
 * The largest sweep the limits allow, as rows go: SPEC_LIMITS.maxRuns runs (models x seeds, tiny
 * UNets, no untrained control), each at as many noise levels as SPEC_LIMITS.maxProbeTasks allows,
 * every decoder block (4) probed: the most probe-task rows a submit can store.
 */
function largestSpec(name: string): unknown {
  let seeds = Math.min(SPEC_LIMITS.maxSeeds, SPEC_LIMITS.maxRuns);
  while (seeds > 1 && (SPEC_LIMITS.maxRuns % seeds !== 0 || SPEC_LIMITS.maxRuns / seeds > SPEC_LIMITS.maxModels)) seeds--;
  const models = Math.min(SPEC_LIMITS.maxModels, Math.floor(SPEC_LIMITS.maxRuns / seeds));
  const runs = models * seeds;
  const layers = decoderBlockNames({ ...resolveUNet('tiny'), imageSize: 32, imageChannels: 1 }).length;
  const levels = Math.max(1, Math.min(64, Math.floor(SPEC_LIMITS.maxProbeTasks / runs), Math.floor(SPEC_LIMITS.maxProbeCells / (runs * layers))));
  return {
    name,
    dataset: 'fashion-mnist',
    models: Array.from({ length: models }, (_, i) => ({ name: `tiny-${i}`, method: 'ddpm', unet: 'tiny' })),
    pretrain: { steps: 10, seeds: Array.from({ length: seeds }, (_, i) => i) },
    probe: { layers: 'all', timesteps: Array.from({ length: levels }, (_, i) => 1 + i * Math.floor(999 / levels)), trainSize: 100, testSize: 50, epochs: 1 },
    baselines: [],
  };
}

/** CPU milliseconds a process has used (user + system), from /proc (Linux; 100 ticks per second). */
function cpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}

/**
 * Submits the largest allowed sweep `tries` times over HTTP. Besides the wall time, the CPU time the
 * API process and the database's backends spent on it: the work is one serial chain, so on an idle
 * machine their sum is about what the wall time would be (this machine's is inflated by others' load).
 */
async function timeSubmit(base: string, c: Client, database: string, apiPid: number, tries: number) {
  const all: number[] = [];
  const cpu: { apiMs: number; postgresMs: number }[] = [];
  let counts = { probeCells: 0, runs: 0, probeTasks: 0 };
  const backends = async () => (await c.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database])).rows.map((r) => r.pid);
  for (let i = 0; i < tries; i++) {
    const pids = await backends();
    const before = { api: cpuMs(apiPid), pg: pids.map(cpuMs) };
    const t = performance.now();
    const res = await fetch(`${base}/api/sweeps`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(largestSpec(`bench-submit-${i}`)) });
    const body = (await res.json()) as { counts?: typeof counts };
    all.push(round1(performance.now() - t));
    if (res.status !== 201 || !body.counts) throw new Error(`POST /api/sweeps: ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
    // Backends the pool opened meanwhile count from 0.
    const after = await backends();
    cpu.push({ apiMs: cpuMs(apiPid) - before.api, postgresMs: after.reduce((sum, pid) => sum + cpuMs(pid) - (before.pg[pids.indexOf(pid)] ?? 0), 0) });
    counts = body.counts;
  }
  const sorted = [...all].sort((a, b) => a - b);
  const median = <T>(xs: T[], key: (x: T) => number) => [...xs].map(key).sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return {
    cells: counts.probeCells,
    runs: counts.runs,
    probeTasks: counts.probeTasks,
    ms: quantile(sorted, 0.5),
    allMs: all,
    cpuMs: { api: median(cpu, (x) => x.apiMs), postgres: median(cpu, (x) => x.postgresMs), all: cpu },
  };
}

async function startApi(database: string, prefix: string): Promise<{ base: string; child: ChildProcess; stderr: () => string }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['-r', '@swc-node/register', 'apps/api/src/main.ts'], {
    cwd: ROOT,
    env: { ...rawEnv(), DATABASE_URL: databaseUrl(database), REDIS_URL, QUEUE_PREFIX: prefix, PORT: String(port), HOST: '127.0.0.1', RECONCILE_MS: '0', LOG_LEVEL: 'error', API_AUTH: 'off' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the API exited: ${stderr.slice(-500)}`);
    try {
      if ((await fetch(`${base}/health`)).ok) return { base, child, stderr: () => stderr };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`the API did not answer within 60 s: ${stderr.slice(-500)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface JobTiming {
  jobs: number;
  /** Median over the jobs after the first: time in the worker minus the child's compute time. */
  overheadMs: number;
  /** Median compute time the child reported, same jobs. */
  computeMs: number;
  /** Jobs finished per second, from the first taken to the last finished (queue round trips included). */
  jobsPerSecond: number;
  /** The first job: its overhead includes starting the compute child (TensorFlow.js, the backend). */
  firstJob: { overheadMs: number; computeMs: number };
  /** Median gap between one job's end and the next one's start in the worker (BullMQ's fetch). */
  gapMs: number;
  backend: string;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * A real worker (compiled JavaScript, as deployed) over this database and queue runs `n` tiny jobs:
 * n/2 seeds of a 2-step pretrain of the tiny UNet on 16 images, each followed by a probe of one
 * layer on 64 + 64 images. BullMQ records when the worker took and finished each job; the job's
 * return value carries the compute time its child measured.
 */
async function timeJobs(base: string, database: string, prefix: string, n: number, say: (line: string) => void): Promise<JobTiming> {
  const build = spawnSync(process.execPath, ['scripts/build-worker.mjs', '--if-stale'], { cwd: ROOT, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`building the worker failed: ${build.stderr}`);
  const seeds = Array.from({ length: Math.max(1, Math.round(n / 2)) }, (_, i) => i);
  const spec = {
    name: 'bench-jobs', dataset: 'fashion-mnist', models: [{ method: 'ddpm', unet: 'tiny' }],
    pretrain: { steps: 2, batchSize: 4, learningRate: 0.001, checkpointEvery: 2, trainSize: 16, seeds },
    probe: { layers: ['out_4'], timesteps: [10], epochs: 1, batchSize: 32, learningRate: 0.01, trainSize: 64, testSize: 64 },
    baselines: [],
  };
  const artifacts = path.join(os.tmpdir(), `ddae-bench-jobs-${randomBytes(4).toString('hex')}`);
  const threads = String(Math.max(1, os.availableParallelism() - 1));
  const worker = spawn(process.execPath, ['dist/worker/main.js'], {
    cwd: ROOT,
    env: { DDAE_NATIVE_THREADS: threads, DDAE_WASM_THREADS: threads, ...rawEnv(), DATABASE_URL: databaseUrl(database), REDIS_URL, QUEUE_PREFIX: prefix, ARTIFACT_DIR: artifacts, WORKER_ID: 'bench-worker', LOG_LEVEL: 'log', HEARTBEAT_MS: '1000' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  worker.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  worker.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue(QUEUES.compute, { connection: redis, prefix });
  try {
    const res = await fetch(`${base}/api/sweeps`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spec) });
    if (!res.ok) throw new Error(`submitting the job sweep: ${res.status} ${await res.text()}`);
    const id = ((await res.json()) as { id: string }).id;
    say(`job sweep ${id}: ${seeds.length} pretrain + ${seeds.length} probe jobs on one worker`);
    const deadline = Date.now() + 15 * 60_000;
    for (;;) {
      if (worker.exitCode !== null) throw new Error(`the worker exited: ${log.slice(-1500)}`);
      const status = ((await (await fetch(`${base}/api/sweeps/${id}`)).json()) as { status: string }).status;
      if (status === 'SUCCEEDED') break;
      if (status === 'FAILED' || status === 'CANCELLED') throw new Error(`the job sweep ${status}: ${log.slice(-1500)}`);
      if (Date.now() > deadline) throw new Error(`the job sweep did not finish within 15 minutes: ${log.slice(-1500)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const done = (await queue.getCompleted(0, 10_000))
      .filter((j) => j.processedOn && j.finishedOn && (j.returnvalue as { outcome?: string } | null)?.outcome === 'done')
      .sort((a, b) => (a.processedOn as number) - (b.processedOn as number));
    if (done.length === 0) throw new Error('no completed job carries a compute time');
    const per = done.map((j) => {
      const computeMs = (j.returnvalue as { computeMs?: number }).computeMs ?? NaN;
      return { computeMs, overheadMs: (j.finishedOn as number) - (j.processedOn as number) - computeMs };
    });
    const warm = per.length > 1 ? per.slice(1) : per;
    const gaps = done.slice(1).map((j, i) => (j.processedOn as number) - (done[i].finishedOn as number));
    const span = ((done[done.length - 1].finishedOn as number) - (done[0].processedOn as number)) / 1000;
    const round = (x: number) => Math.round(x * 10) / 10;
    const backend = /backend (\S+)/.exec(log)?.[1] ?? 'unknown';
    return {
      jobs: done.length,
      overheadMs: round(median(warm.map((p) => p.overheadMs))),
      computeMs: round(median(warm.map((p) => p.computeMs))),
      jobsPerSecond: Math.round((done.length / span) * 100) / 100,
      firstJob: { overheadMs: round(per[0].overheadMs), computeMs: round(per[0].computeMs) },
      gapMs: round(median(gaps)),
      backend,
    };
  } finally {
    await queue.close().catch(() => undefined);
    // A connection handed to BullMQ stays open after close(): it would keep this process alive.
    redis.disconnect();
    if (worker.exitCode === null) {
      worker.kill('SIGTERM');
      await new Promise((r) => worker.once('exit', r));
    }
    spawnSync('rm', ['-rf', artifacts]);
  }
}

async function deleteQueueKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export async function runOrchestrationBench(argv: string[]): Promise<void> {
  let o: Options;
  try {
    o = parseArgs(argv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  const say = (line: string): void => {
    if (!o.json) process.stderr.write(`${line}\n`);
  };
  const loadBefore = os.loadavg().map((x) => Math.round(x * 100) / 100);
  const database = `ddae_bench_${randomBytes(5).toString('hex')}`;
  const prefix = `bench-${randomBytes(4).toString('hex')}`;
  await admin(`CREATE DATABASE "${database}"`);
  let api: ChildProcess | undefined;
  let apiStderr = (): string => '';
  const c = pgClient(database);
  try {
    const migrate = spawnSync(process.execPath, ['-r', '@swc-node/register', 'libs/migrations/src/main.ts', 'deploy'], { cwd: ROOT, env: { ...rawEnv(), DATABASE_URL: databaseUrl(database) }, encoding: 'utf8' });
    if (migrate.status !== 0) throw new Error(`migrate deploy failed: ${migrate.stderr || migrate.stdout}`);
    await c.connect();
    if (o.only === 'job') {
      const started = await startApi(database, prefix);
      api = started.child;
      apiStderr = started.stderr;
      const job = await timeJobs(started.base, database, prefix, o.jobs || 20, say);
      say(`job: overhead ${job.overheadMs} ms, compute ${job.computeMs} ms (medians of ${job.jobs - 1} warm jobs), ${job.jobsPerSecond} jobs/s; the first job: overhead ${job.firstJob.overheadMs} ms`);
      process.stdout.write(`${JSON.stringify({ job, load: { before: loadBefore, after: os.loadavg().map((x) => Math.round(x * 100) / 100), cpus: os.availableParallelism() } })}\n`);
      return;
    }
    const small = Math.max(1, Math.round(SMALL_ROWS / RESULTS_PER_SWEEP));
    const large = Math.max(small, Math.round(o.rows / RESULTS_PER_SWEEP));
    say(`database ${database}; seeding ${small} sweeps (${small * RESULTS_PER_SWEEP} results)`);
    const seedSmall = await seed(c, small, 0);
    const started = await startApi(database, prefix);
    api = started.child;
    apiStderr = started.stderr;
    const base = started.base;
    say(`timing ${o.requests} requests per view at ${small * RESULTS_PER_SWEEP} results`);
    const at10k = await timeViews(base, c, o.requests);
    say(`seeding ${large - small} more sweeps (to ${large * RESULTS_PER_SWEEP} results)`);
    const seedLarge = await seed(c, large - small, small);
    const rows = Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM probe_results')).rows[0].n);
    const counts = (await c.query<{ sweeps: string; runs: string; tasks: string; configs: string }>(
      'SELECT (SELECT count(*) FROM sweeps) sweeps, (SELECT count(*) FROM runs) runs, (SELECT count(*) FROM probe_tasks) tasks, (SELECT count(*) FROM leaderboard_configs) configs',
    )).rows[0];
    say(`timing ${o.requests} requests per view at ${rows} results`);
    const atRows = await timeViews(base, c, o.requests);
    const views: Record<string, ViewTiming & { p95MsAt10k: number; growth: number }> = {};
    for (const [name, t] of Object.entries(atRows)) {
      views[name] = { ...t, p95MsAt10k: at10k[name].p95Ms, growth: Math.round((t.p95Ms / at10k[name].p95Ms) * 100) / 100 };
      say(`${name.padEnd(42)} p50 ${t.p50Ms} ms, p95 ${t.p95Ms} ms (at 10k: ${at10k[name].p95Ms} ms), growth ${views[name].growth}`);
    }
    // Before the submits: their (large) jobs stay queued, and this worker must take only the tiny ones.
    const job = o.jobs > 0 ? await timeJobs(base, database, prefix, o.jobs, say) : undefined;
    if (job) say(`job: overhead ${job.overheadMs} ms, compute ${job.computeMs} ms (medians of ${job.jobs - 1} warm jobs), ${job.jobsPerSecond} jobs/s; the first job: overhead ${job.firstJob.overheadMs} ms`);
    say('submitting the largest allowed sweep 3 times');
    const submit = await timeSubmit(base, c, database, started.child.pid ?? 0, 3);
    say(`submit: ${submit.runs} runs, ${submit.cells} cells, ${submit.probeTasks} probe tasks: median ${submit.ms} ms (${submit.allMs.join(', ')}); CPU: API ${submit.cpuMs.api} ms, Postgres ${submit.cpuMs.postgres} ms`);
    const out = {
      rows,
      views,
      submit,
      ...(job ? { job } : { job: null, jobNote: 'not measured (--jobs 0)' }),
      database: { sweeps: Number(counts.sweeps), runs: Number(counts.runs), probeTasks: Number(counts.tasks), configCells: Number(counts.configs), smallRows: small * RESULTS_PER_SWEEP },
      seed: { small: seedSmall, large: seedLarge },
      load: { before: loadBefore, after: os.loadavg().map((x) => Math.round(x * 100) / 100), cpus: os.availableParallelism() },
      requestsPerView: o.requests,
      ...(o.keep ? { kept: databaseUrl(database) } : {}),
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } catch (err) {
    const tail = apiStderr().slice(-2000);
    if (tail) process.stderr.write(`the API's stderr (last 2000 characters):\n${tail}\n`);
    throw err;
  } finally {
    if (api && api.exitCode === null) {
      api.kill('SIGTERM');
      await new Promise((r) => api?.once('exit', r));
    }
    await c.end().catch(() => undefined);
    await deleteQueueKeys(prefix).catch(() => undefined);
    if (!o.keep) await admin(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  }
}
