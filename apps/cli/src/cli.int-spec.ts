import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { createTestDatabase, deleteQueueKeys, freePort, seedFinishedSweep, startTsProcess, uniqueQueuePrefix, waitFor, type FinishedSweep, type ManagedProcess, type TestDatabase } from '@ddae/testing';

const ROOT = path.resolve(__dirname, '../../..');
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The CLI against a real API process on a real database (a finished sweep written through the
 * repositories): each command is a real `ddae` process, run from an empty directory so that any
 * file it writes unasked would show.
 */
describe('ddae against a real API', () => {
  let db: TestDatabase;
  let api: ManagedProcess;
  let base: string;
  let prefix: string;
  let cwd: string;
  let sweep: FinishedSweep;

  const ddae = (...args: string[]): Promise<Ran> => ddaeWith({}, ...args);
  /** `env`: DDAE_API_TOKEN, DATABASE_URL... for this command only (none of the test's own reaches it). */
  const ddaeWith = (env: Record<string, string>, ...args: string[]): Promise<Ran> =>
    new Promise((resolve, reject) => {
      const { DDAE_API_TOKEN: _token, DATABASE_URL: _db, ...inherited } = process.env;
      const child = spawn(process.execPath, ['-r', require.resolve('@swc-node/register'), path.join(ROOT, 'apps/cli/src/main.ts'), ...args], {
        cwd,
        env: { ...inherited, DDAE_API_URL: base, SWC_NODE_PROJECT: path.join(ROOT, 'tsconfig.json'), ARTIFACT_DIR: '', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });

  beforeAll(async () => {
    db = await createTestDatabase();
    sweep = await seedFinishedSweep(db.prisma, { name: 'cli-fixture' });
    prefix = uniqueQueuePrefix('cli');
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    api = startTsProcess('apps/api/src/main.ts', { DATABASE_URL: db.url, REDIS_URL, QUEUE_PREFIX: prefix, PORT: String(port), RECONCILE_MS: '0', LOG_LEVEL: 'warn' }, 'api');
    await waitFor('the API to answer /health', async () => ((await fetch(`${base}/health`).catch(() => null))?.ok ? true : undefined), { timeoutMs: 60_000, describe: async () => api.output() });
    cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'ddae-cli-int-'));
  }, 120_000);

  afterAll(async () => {
    await api?.stop();
    await deleteQueueKeys(REDIS_URL, prefix);
    await db?.drop();
    if (cwd) fs.rmSync(cwd, { recursive: true, force: true });
  });

  afterEach(() => {
    // Nothing lands in the working directory unless a test names a file there.
    expect(fs.readdirSync(cwd).filter((f) => !f.startsWith('told-'))).toEqual([]);
  });

  it('exits 2 with the usage when given no command; has help per command', async () => {
    const none = await ddae();
    expect(none.code).toBe(2);
    expect(none.stdout).toBe('');
    expect(none.stderr).toContain('no command given');
    expect(none.stderr).toContain('usage: npm run ddae -- <command>');
    const [a, b] = await Promise.all([ddae('help', 'export'), ddae('export', '--help')]);
    expect(a).toMatchObject({ code: 0, stderr: '' });
    expect(b.stdout).toBe(a.stdout);
    expect(a.stdout).toContain('--format csv|jsonl');
    const overview = await ddae('--help');
    expect(overview.code).toBe(0);
    for (const command of ['sweep', 'leaderboard', 'heatmap', 'export', 'pretrain', 'sample', 'probe']) expect(overview.stdout).toContain(`  ${command}`);
    expect((await ddae('help', 'nope')).code).toBe(2);
    const unknown = await ddae('frobnicate');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
  });

  it('lists sweeps by status with the short ids every command takes', async () => {
    const done = await ddae('sweep', 'list', '--status', 'succeeded');
    expect(done.code).toBe(0);
    const short = sweep.sweepId.slice(0, 8);
    expect(done.stdout).toContain(short);
    expect(done.stdout).not.toContain(sweep.sweepId);
    expect((await ddae('sweep', 'list', '--status', 'running')).stdout).toContain('(no RUNNING sweeps)');
    const bad = await ddae('sweep', 'list', '--status', 'sleeping');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--status must be one of QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED');
    const status = await ddae('sweep', 'status', short);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`sweep ${sweep.sweepId}  cli-fixture  [SUCCEEDED]`);
  });

  it('lists the candidates of an ambiguous short id and refuses one that is too short', async () => {
    const base = { name: 'twin', dataset: 'fashion-mnist', spec: {}, specHash: 'x' };
    await db.prisma.sweep.createMany({ data: [{ ...base, id: 'feedbeef-0000-4000-8000-000000000001' }, { ...base, id: 'feedbeef-0000-4000-8000-000000000002' }] });
    const ambiguous = await ddae('sweep', 'status', 'feedbeef');
    expect(ambiguous.code).toBe(1);
    expect(ambiguous.stderr).toContain('409 the id matches 2 sweeps; give more of it:');
    expect(ambiguous.stderr).toContain('feedbeef-0000-4000-8000-000000000001  twin');
    expect(ambiguous.stderr).toContain('feedbeef-0000-4000-8000-000000000002  twin');
    expect((await ddae('sweep', 'status', 'feedbeef-0000-4000-8000-000000000002')).code).toBe(0);
    const short = await ddae('sweep', 'status', 'feedbee');
    expect(short.code).toBe(1);
    expect(short.stderr).toContain('at least 8 hex digits');
  });

  it('exports every result with its hyper-parameters as CSV to stdout and as JSON lines to --out', async () => {
    const total = await db.prisma.probeResult.count({ where: { sweepId: sweep.sweepId } });
    const csv = await ddae('export', sweep.sweepId.slice(0, 8));
    expect(csv.code).toBe(0);
    const lines = csv.stdout.trimEnd().split('\r\n');
    expect(lines[0]).toMatch(/^sweep_id,sweep,dataset,run,model,method,untrained,backbone,unet,dit,/);
    expect(lines).toHaveLength(total + 1);
    expect(lines.filter((l) => l.includes(',ddpm-small-untrained-s0,')).length).toBeGreaterThan(0);

    const jsonl = await ddae('export', sweep.sweepId, '--format', 'jsonl', '--out', 'told-results.jsonl');
    expect(jsonl).toMatchObject({ code: 0, stdout: '' });
    expect(jsonl.stderr).toContain('wrote told-results.jsonl');
    const rows = fs.readFileSync(path.join(cwd, 'told-results.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { accuracy: number; run: string; layer: string; noise_level: number });
    expect(rows).toHaveLength(total);
    for (const r of rows) expect(r.accuracy).toBe(sweep.accuracy(r.run, r.layer, r.noise_level));
    fs.rmSync(path.join(cwd, 'told-results.jsonl'));

    expect((await ddae('export', sweep.sweepId, '--format', 'xml')).code).toBe(2);
    const missing = await ddae('export', '0000000000000000', '--out', 'told-missing.csv');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('404');
    expect(fs.existsSync(path.join(cwd, 'told-missing.csv'))).toBe(false);
  });

  it('writes the heatmap only where --out says', async () => {
    const refused = await ddae('heatmap', sweep.sweepId.slice(0, 8));
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('needs --out FILE');
    const ok = await ddae('heatmap', sweep.sweepId.slice(0, 8), '--out', 'told-heatmap.png', '--json');
    expect(ok.code).toBe(0);
    const summary = JSON.parse(ok.stdout) as { width: number; height: number; cells: number };
    const png = PNG.sync.read(fs.readFileSync(path.join(cwd, 'told-heatmap.png')));
    expect([png.width, png.height]).toEqual([summary.width, summary.height]);
    fs.rmSync(path.join(cwd, 'told-heatmap.png'));
  });

  it('pages the leaderboard with --cursor and names the untrained baseline\'s cell', async () => {
    const first = await ddae('leaderboard', '--sweep', sweep.sweepId.slice(0, 8), '--per', 'config', '--limit', '2');
    expect(first.code).toBe(0);
    const cursor = /more rows: add --cursor (\S+)/.exec(first.stdout)?.[1];
    expect(cursor).toBeDefined();
    expect(first.stdout).toMatch(/untrained network .* ddpm-small out_2 t=4/);
    const second = await ddae('leaderboard', '--sweep', sweep.sweepId.slice(0, 8), '--per', 'config', '--limit', '2', '--cursor', cursor ?? '');
    expect(second.code).toBe(0);
    const ranks = (text: string) => [...text.matchAll(/^\s*(\d+)\s+\d+\.\d\d\s/gm)].map((m) => Number(m[1]));
    expect(ranks(first.stdout)).toEqual([1, 2]);
    expect(ranks(second.stdout)).toEqual([3, 4]);
  });

  it('reads the leaderboard, verdict and heatmap at a label budget (--labels), and names a bad one', async () => {
    const budgets = await seedFinishedSweep(db.prisma, { name: 'cli-budgets', labels: [20] });
    const id = budgets.sweepId.slice(0, 8);
    const few = await ddae('leaderboard', '--sweep', id, '--labels', '20', '--per', 'config', '--limit', '1', '--json');
    expect(few.code).toBe(0);
    const board = JSON.parse(few.stdout) as { filter: { labels: unknown }; rows: { labels: unknown; mean: number }[]; baselines: { labels: unknown }[] };
    expect([board.filter.labels, board.rows[0].labels, ...board.baselines.map((b) => b.labels)]).toEqual([20, 20, 20, 20]);
    const mean = (labels?: number) => (budgets.accuracy('ddpm-small-s0', 'out_2', 4, labels) + budgets.accuracy('ddpm-small-s1', 'out_2', 4, labels)) / 2;
    expect(board.rows[0].mean).toBeCloseTo(mean(20), 10);
    const table = await ddae('leaderboard', '--sweep', id, '--labels', '20');
    expect(table.stdout).toContain('label budget: 20 labelled images in total (class-balanced)');
    expect((await ddae('leaderboard', '--sweep', id)).stdout).toContain("label budget: all of each protocol's training images");
    expect((await ddae('verdict', id, '--labels', '20')).stdout).toMatch(new RegExp(`${(100 * mean(20)).toFixed(2)} % ± [0-9.]+ \\(mean of 2 seeds, 20 labels\\)`));
    const heat = await ddae('heatmap', id, '--labels', '20', '--out', 'told-budget.png', '--json');
    expect(JSON.parse(heat.stdout)).toMatchObject({ labels: 20, cells: 2 * 27 });
    fs.rmSync(path.join(cwd, 'told-budget.png'));
    const bad = await ddae('leaderboard', '--labels', 'some');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--labels must be all or a positive number of labelled images');
  });

  it('manages API tokens straight in Postgres: created once, listed without the secret, revoked; a wrong command line exits 2 naming the fix', async () => {
    const pg = { DATABASE_URL: db.url };
    const created = await ddaeWith(pg, 'token', 'create', '--name', 'cli-int', '--scope', 'read', '--json');
    expect(created.code).toBe(0);
    expect(created.stderr).toContain('it is shown once, keep it now');
    const token = JSON.parse(created.stdout) as { id: string; name: string; scope: string; token: string };
    expect(token).toMatchObject({ name: 'cli-int', scope: 'read' });
    const [listed, table] = await Promise.all([ddaeWith(pg, 'token', 'list', '--json'), ddaeWith(pg, 'token', 'list')]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).not.toContain(token.token);
    const rows = JSON.parse(listed.stdout) as { id: string; name: string; scope: string; prefix: string; revokedAt: string | null }[];
    expect(rows.find((r) => r.id === token.id)).toMatchObject({ name: 'cli-int', scope: 'read', prefix: token.token.slice(0, 10), revokedAt: null });
    expect(table.stdout).toMatch(new RegExp(`^${token.id}\\s+cli-int\\s+read\\s+${token.token.slice(0, 10)}`, 'm'));

    const revoked = await ddaeWith(pg, 'token', 'revoke', token.token.slice(0, 10), '--json');
    expect(revoked).toMatchObject({ code: 0 });
    expect(JSON.parse(revoked.stdout)).toEqual({ revoked: 1 });
    expect((await db.prisma.apiToken.findUniqueOrThrow({ where: { id: token.id } })).revokedAt).not.toBeNull();
    const again = await ddaeWith(pg, 'token', 'revoke', token.id);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`no live token with id or prefix "${token.id}" (see npm run ddae -- token list)`);

    // Independent commands run side by side (each is a process of its own).
    const [scope, noId, unknown] = await Promise.all([ddaeWith(pg, 'token', 'create', '--scope', 'root'), ddaeWith(pg, 'token', 'revoke'), ddaeWith(pg, 'token', 'rotate')]);
    expect(scope.code).toBe(2);
    expect(scope.stderr).toContain('--scope must be one of read, submit, admin (got "root")');
    expect(noId.code).toBe(2);
    expect(noId.stderr).toContain('npm run ddae -- token revoke <id|prefix>');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown token command "rotate": use create, list or revoke');
  });

  it('submits, shows, lists and cancels a sweep with a token; without one, or with a revoked one, says how to get one', async () => {
    const spec = { name: 'cli-submit', dataset: 'fashion-mnist', models: [{ method: 'ddpm', unet: 'tiny' }], pretrain: { steps: 5, seeds: [0, 1] }, probe: { timesteps: [5, 10] } };
    fs.writeFileSync(path.join(cwd, 'told-spec.json'), JSON.stringify(spec));
    fs.writeFileSync(path.join(cwd, 'told-bad.yaml'), 'name: cli-bad\ndataset: fashion-mnist\nmodels: [{method: gan, unet: tiny}]\npretrain: {steps: 0}\nprobe: {timesteps: [5]}\n');
    const sweeps = () => db.prisma.sweep.count({ where: { name: 'cli-submit' } });
    try {
      const denied = await ddae('sweep', 'submit', 'told-spec.json');
      expect(denied.code).toBe(1);
      expect(denied.stderr).toContain('ddae: this endpoint needs an API token of scope submit');
      expect(denied.stderr).toContain('npm run ddae -- token create --scope submit');
      expect(denied.stderr).toContain('then pass it with --token <token> or DDAE_API_TOKEN');
      expect(await sweeps()).toBe(0);

      const pg = { DATABASE_URL: db.url };
      const { token, id: tokenId } = JSON.parse((await ddaeWith(pg, 'token', 'create', '--name', 'cli-submit', '--json')).stdout) as { token: string; id: string };
      const auth = { DDAE_API_TOKEN: token };
      const plan = await ddaeWith(auth, 'sweep', 'submit', 'told-spec.json', '--dry-run', '--json');
      expect(plan.code).toBe(0);
      expect(JSON.parse(plan.stdout)).toMatchObject({ counts: { runs: 2, probeTasks: 4 } });
      expect(await sweeps()).toBe(0);

      const submitted = await ddaeWith(auth, 'sweep', 'submit', 'told-spec.json', '--json');
      expect(submitted.code).toBe(0);
      const body = JSON.parse(submitted.stdout) as { id: string; created: boolean; queued: boolean; counts: Record<string, number> };
      expect(body).toMatchObject({ created: true, queued: true, counts: { runs: 2, probeTasks: 4 } });
      expect(await sweeps()).toBe(1);
      const shown = await ddae('sweep', 'status', body.id.slice(0, 8), '--json');
      expect(shown.code).toBe(0);
      const detail = JSON.parse(shown.stdout) as { id: string; status: string; runs: { key: string; status: string }[] };
      expect(detail).toMatchObject({ id: body.id, status: 'QUEUED' });
      expect(detail.runs.map((r) => [r.key, r.status]).sort()).toEqual([['ddpm-tiny-s0', 'QUEUED'], ['ddpm-tiny-s1', 'QUEUED']]);
      const listed = JSON.parse((await ddae('sweep', 'list', '--status', 'queued', '--json')).stdout) as { sweeps: { id: string; status: string }[] };
      expect(listed.sweeps.map((s) => [s.id, s.status])).toContainEqual([body.id, 'QUEUED']);
      expect(listed.sweeps.every((s) => s.status === 'QUEUED')).toBe(true);

      // Bad input: the file is named, the spec's bad fields by their paths, the command line's by its usage.
      const [bad, missing, noFile, noId] = await Promise.all([
        ddaeWith(auth, 'sweep', 'submit', 'told-bad.yaml'),
        ddaeWith(auth, 'sweep', 'submit', 'told-nowhere.yaml'),
        ddaeWith(auth, 'sweep', 'submit'),
        ddaeWith(auth, 'sweep', 'cancel'),
      ]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/^ddae: 400 /);
      expect(bad.stderr).toMatch(/^ {2}models\.0\.method: /m);
      expect(bad.stderr).toMatch(/^ {2}pretrain\.steps: /m);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('cannot read the spec file "told-nowhere.yaml": check the path');
      expect(noFile.code).toBe(2);
      expect(noFile.stderr).toContain('sweep submit needs a spec file: npm run ddae -- sweep submit examples/fashion-mnist.yaml');
      expect(noId.code).toBe(2);
      expect(noId.stderr).toContain('npm run ddae -- sweep cancel <id>');
      expect(await sweeps()).toBe(1);

      const cancelled = await ddaeWith(auth, 'sweep', 'cancel', body.id.slice(0, 8), '--json');
      expect(cancelled.code).toBe(0);
      expect(JSON.parse(cancelled.stdout)).toMatchObject({ id: body.id, status: 'CANCELLED' });
      expect((await db.prisma.sweep.findUniqueOrThrow({ where: { id: body.id } })).status).toBe('CANCELLED');
      expect((await ddae('sweep', 'status', body.id)).stdout).toContain(`sweep ${body.id}  cli-submit  [CANCELLED]`);

      await ddaeWith(pg, 'token', 'revoke', tokenId);
      const stale = await ddaeWith(auth, 'sweep', 'submit', 'told-spec.json');
      expect(stale.code).toBe(1);
      expect(stale.stderr).toContain('401 unknown or revoked API token');
      expect(await sweeps()).toBe(1);
    } finally {
      for (const f of ['told-spec.json', 'told-bad.yaml']) fs.rmSync(path.join(cwd, f));
    }
  });

  it('filters the leaderboard (--json parsed; a filter the API would refuse names the flag)', async () => {
    const short = sweep.sweepId.slice(0, 8);
    type Board = { rows: { method: string; dataset: string; runKey?: string; rank: number; accuracy?: number; mean?: number }[]; baselines: { kind: string }[]; filter: Record<string, unknown>; nextCursor: string | null };
    const board = async (...args: string[]): Promise<Board> => {
      const r = await ddae('leaderboard', '--sweep', short, ...args, '--json');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      return JSON.parse(r.stdout) as Board;
    };
    // Independent commands run side by side (each is a process of its own).
    const [cells, perRun, edm, mnist, text, per, method, limit, foreign] = await Promise.all([
      board('--method', 'ddpm', '--dataset', 'fashion-mnist', '--limit', '500'),
      board('--per', 'run'),
      board('--method', 'edm'),
      board('--dataset', 'mnist'),
      ddae('leaderboard', '--sweep', short, '--per', 'run'),
      ddae('leaderboard', '--per', 'seed'),
      ddae('leaderboard', '--method', 'gan'),
      ddae('leaderboard', '--limit', '0'),
      ddae('leaderboard', '--status', 'running'),
    ]);
    expect(cells.filter).toMatchObject({ method: 'ddpm', dataset: 'fashion-mnist', per: 'cell' });
    const trained = await db.prisma.probeResult.count({ where: { sweepId: sweep.sweepId, untrained: false } });
    expect(cells.rows).toHaveLength(trained);
    expect(cells.rows.map((r) => r.rank)).toEqual(cells.rows.map((_, i) => i + 1));
    expect(cells.rows.every((r) => r.method === 'ddpm' && r.runKey !== undefined && !r.runKey.includes('untrained'))).toBe(true);
    expect(cells.baselines.map((b) => b.kind)).toEqual(['pixels', 'untrained']);
    // Best per run: one row for each trained seed.
    expect(perRun.rows.map((r) => r.runKey).sort()).toEqual(['ddpm-small-s0', 'ddpm-small-s1']);
    // Nothing of another method or data set.
    expect(edm.rows).toEqual([]);
    expect(mnist.rows).toEqual([]);

    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^#\s+acc %\s+model\s+method\s+layer\s+noise/m);
    expect(text.stdout).toContain('baselines (beside the ranking, never in it)');
    expect(per.code).toBe(2);
    expect(per.stderr).toContain('--per must be one of cell, run, config, got "seed"');
    expect(method.code).toBe(2);
    expect(method.stderr).toContain('--method must be one of ddpm, edm, got "gan"');
    expect(limit.code).toBe(1);
    expect(limit.stderr).toMatch(/^ddae: 400 [\s\S]*limit/);
    expect(foreign.code).toBe(2);
    expect(foreign.stderr).toContain('leaderboard does not take --status');
  });

  // Last: its sweep would change the other tests' leaderboards.
  it('shows a run\'s FID beside its accuracy (never in the ranking) when the sweep measured it', async () => {
    const measured = await seedFinishedSweep(db.prisma, { name: 'cli-fid' });
    for (const runId of Object.values(measured.runs)) {
      await db.prisma.runGenerationQuality.create({
        data: {
          runId, sweepId: measured.sweepId, step: 400, extractor: 'ddae-fmnist-cnn-v1 penultimate, 128-d', extractorSha256: 'a'.repeat(64), fid: 42.5, kidMean: 0.031, kidStd: 0.002, kidSubsets: 20,
          kidSubsetSize: 500, samples: 2000, reference: 'fashion-mnist test', referenceCount: 10_000, sampler: 'ddim', samplerSteps: 50, seed: 0, seconds: 12.5, backend: 'native', workerId: 'w-cli',
        },
      });
    }
    const board = await ddae('leaderboard', '--sweep', measured.sweepId.slice(0, 8), '--per', 'run');
    expect(board.code).toBe(0);
    expect(board.stdout).toMatch(/^#\s+acc %\s+FID\s+model\s+method/m);
    expect([...board.stdout.matchAll(/^\s*\d+\s+\d+\.\d\d\s+(\S+)\s/gm)].map((m) => m[1])).toEqual(['42.5', '42.5']);
    expect(board.stdout).toContain('FID: of each run\'s samples against the test split, in ddae-fmnist-cnn-v1 penultimate, 128-d, 2000 samples (lower is better; not part of the ranking)');
    // Without a measurement the table keeps its columns.
    const plain = await ddae('leaderboard', '--sweep', sweep.sweepId.slice(0, 8), '--per', 'run');
    expect(plain.stdout).toMatch(/^#\s+acc %\s+model\s+method/m);
    expect(plain.stdout).not.toContain('FID');
  });
});
