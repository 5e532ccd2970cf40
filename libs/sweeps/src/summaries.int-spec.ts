import { LeaderboardRepository, ProbeRepository, rebuildSummaries, RunRepository, type LeaderboardConfigRow, type LeaderboardRow, type PrismaClient } from '@ddae/db';
import { createTestDatabase, seedFinishedSweep, type TestDatabase } from '@ddae/testing';

/**
 * The leaderboard's summary rows (leaderboard_runs, leaderboard_configs, heatmap_cells) against the
 * raw rows: every view the leaderboard used to compute over the whole of probe_results, computed
 * here again by those very queries, must equal what the summaries answer, after a normal sweep,
 * after retried and duplicated writes, after concurrent completions and after the migration's
 * backfill.
 */

const round = (x: number | null) => (x === null ? null : Math.round(x * 1e12) / 1e12);

/** The raw rows of one label budget (null: all). */
const budgetSql = (labels: number | null, t = 'pr') => (labels === null ? `${t}.labels IS NULL` : `${t}.labels = ${labels}`);

/** The `per=run` ranking as it was computed before the summaries: DISTINCT ON over every result. */
async function rawRunRanking(prisma: PrismaClient, where = 'true', labels: number | null = null): Promise<string[]> {
  const rows = await prisma.$queryRawUnsafe<{ id: string }[]>(`
    SELECT best.id FROM (
      SELECT DISTINCT ON (pr.run_id) pr.* FROM probe_results pr WHERE pr.untrained = false AND ${where} AND ${budgetSql(labels)}
      ORDER BY pr.run_id, pr.accuracy DESC, pr.created_at ASC, pr.id ASC
    ) best ORDER BY best.accuracy DESC, best.created_at ASC, best.id ASC`);
  return rows.map((r) => r.id);
}

/** The `per=config` ranking as it was computed before: GROUP BY over every result. */
async function rawConfigRanking(prisma: PrismaClient, untrained: boolean, where = 'true', labels: number | null = null): Promise<unknown[]> {
  const rows = await prisma.$queryRawUnsafe<(LeaderboardConfigRow & { n: bigint })[]>(`
    SELECT * FROM (
      SELECT avg(pr.accuracy) AS mean, stddev_samp(pr.accuracy) AS std, min(pr.accuracy) AS min, max(pr.accuracy) AS max,
             count(*) AS n, array_agg(r.seed ORDER BY r.seed) AS seeds,
             pr.layer, pr.noise_level AS "noiseLevel", pr.method, pr.dataset, r.model_name AS "modelName",
             max(r.parameters) AS parameters, pr.sweep_id AS "sweepId", s.name AS "sweepName",
             pr.protocol_key AS "protocolKey", pr.noise_protocol AS "noiseProtocol", pr.probe_protocol AS "probeProtocol", pr.pooling, pr.labels,
             CASE WHEN max(r.source_path) IS NULL THEN NULL ELSE json_build_object('path', max(r.source_path), 'sha256', max(r.source_sha256)) END AS source,
             -- These sweeps fine-tune nothing (finetune.int-spec.ts covers that).
             NULL::json AS finetuned
      FROM probe_results pr JOIN runs r ON r.id = pr.run_id JOIN sweeps s ON s.id = pr.sweep_id
      WHERE pr.untrained = ${untrained} AND ${where} AND ${budgetSql(labels)}
      GROUP BY pr.sweep_id, s.name, r.model_name, pr.method, pr.dataset, pr.layer, pr.noise_level,
               pr.protocol_key, pr.noise_protocol, pr.probe_protocol, pr.pooling, pr.labels
    ) g ORDER BY g.mean DESC, g.n DESC, g."modelName", g.layer, g."noiseLevel", g."protocolKey", g."sweepId"`);
  return rows.map((r) => normaliseConfig({ ...r, n: Number(r.n) }));
}

function normaliseConfig(r: LeaderboardConfigRow): unknown {
  return { ...r, mean: round(r.mean), std: round(r.std), n: Number(r.n) };
}

/** A sweep's heatmap as it was computed before. */
async function rawHeatmap(prisma: PrismaClient, sweepId: string, labels: number | null = null): Promise<unknown[]> {
  const rows = await prisma.$queryRawUnsafe<{ mean: number; std: number | null; n: bigint }[]>(
    `SELECT r.model_name || CASE WHEN r.untrained THEN ' (untrained)' ELSE '' END AS "modelName", r.untrained,
            pr.method, pr.layer, pr.noise_level AS "noiseLevel",
            avg(pr.accuracy) AS mean, stddev_samp(pr.accuracy) AS std, min(pr.accuracy) AS min, max(pr.accuracy) AS max, count(*) AS n, pr.labels
     FROM probe_results pr JOIN runs r ON r.id = pr.run_id WHERE pr.sweep_id = $1::uuid AND ${budgetSql(labels)}
     GROUP BY r.model_name, r.untrained, pr.method, pr.layer, pr.noise_level, pr.labels
     ORDER BY r.untrained, r.model_name, pr.noise_level, pr.layer`,
    sweepId,
  );
  return rows.map((r) => ({ ...r, mean: round(r.mean), std: round(r.std), n: Number(r.n) }));
}

/** The untrained baseline as it was computed before (the accuracy decides; ties are the same cell here). */
async function rawUntrainedBest(prisma: PrismaClient, labels: number | null = null): Promise<unknown[]> {
  return prisma.$queryRawUnsafe(`
    SELECT DISTINCT ON (pr.dataset, pr.method) pr.dataset, pr.method, pr.accuracy
    FROM probe_results pr WHERE pr.untrained AND ${budgetSql(labels)} ORDER BY pr.dataset, pr.method, pr.accuracy DESC, pr.created_at ASC`);
}

/** Every page of a ranking, followed through its cursors. */
async function allPages<Row>(leaderboard: LeaderboardRepository, filter: Parameters<LeaderboardRepository['page']>[0]): Promise<Row[]> {
  const rows: Row[] = [];
  let cursor: string | undefined;
  do {
    const page = await leaderboard.page({ ...filter, limit: 7, cursor });
    rows.push(...(page.rows as unknown as Row[]));
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return rows;
}

async function expectSummariesMatchRawRows(prisma: PrismaClient, sweepIds: string[], options: { cells?: boolean } = {}): Promise<void> {
  const leaderboard = new LeaderboardRepository(prisma);
  const budgets = (await prisma.$queryRawUnsafe<{ labels: number | null }[]>(`SELECT DISTINCT labels FROM probe_results ORDER BY labels NULLS LAST`)).map((r) => r.labels);
  // Every view, at every label budget: a budget's numbers are its raw rows' alone.
  for (const labels of budgets) {
    if (options.cells) {
      // The cell ranking pages through probe_results itself (two index range scans per page after the first).
      const rawCells = await prisma.$queryRawUnsafe<{ id: string }[]>(`SELECT id FROM probe_results pr WHERE untrained = false AND ${budgetSql(labels)} ORDER BY accuracy DESC, created_at ASC, id ASC`);
      expect((await allPages<LeaderboardRow>(leaderboard, { per: 'cell', labels })).map((r) => r.resultId)).toEqual(rawCells.map((r) => r.id));
    }
    expect((await allPages<LeaderboardRow>(leaderboard, { per: 'run', labels })).map((r) => r.resultId)).toEqual(await rawRunRanking(prisma, 'true', labels));
    expect((await allPages<LeaderboardRow>(leaderboard, { per: 'run', method: 'ddpm', dataset: 'fashion-mnist', labels })).map((r) => r.resultId)).toEqual(
      await rawRunRanking(prisma, `pr.method = 'ddpm' AND pr.dataset = 'fashion-mnist'`, labels),
    );
    const configs = (await allPages<LeaderboardConfigRow & { rank: number }>(leaderboard, { per: 'config', labels })).map(({ rank: _rank, ...r }) => normaliseConfig(r));
    expect(configs).toEqual(await rawConfigRanking(prisma, false, 'true', labels));
    for (const sweepId of sweepIds) {
      const heat = (await leaderboard.heatmap(sweepId, labels)).map((h) => ({ ...h, mean: round(h.mean), std: round(h.std) }));
      expect(heat).toEqual(await rawHeatmap(prisma, sweepId, labels));
      const verdict = await leaderboard.verdict(sweepId, labels);
      expect(verdict.labels).toBe(labels);
      const [bestRaw] = await rawConfigRanking(prisma, false, `pr.sweep_id = '${sweepId}'`, labels);
      expect(verdict.best && normaliseConfig(verdict.best)).toEqual(bestRaw ?? null);
      const [controlRaw] = await rawConfigRanking(prisma, true, `pr.sweep_id = '${sweepId}' AND pr.protocol_key = '${verdict.best?.protocolKey}'`, labels);
      expect(verdict.untrained && normaliseConfig(verdict.untrained)).toEqual(controlRaw ?? null);
    }
    const untrained = await leaderboard.untrainedBest(['fashion-mnist'], undefined, labels);
    expect(untrained.map((u) => ({ dataset: u.dataset, method: u.method, accuracy: u.accuracy }))).toEqual(await rawUntrainedBest(prisma, labels));
  }
  // Each summary row is what a full recompute gives: no row missing, none extra.
  expect(await prisma.leaderboardRunSummary.count()).toBe(Number((await prisma.$queryRawUnsafe<{ n: bigint }[]>(`SELECT count(*) AS n FROM (SELECT DISTINCT run_id, labels FROM probe_results) k`))[0].n));
  let configCount = 0;
  for (const labels of budgets) configCount += (await rawConfigRanking(prisma, false, 'true', labels)).length + (await rawConfigRanking(prisma, true, 'true', labels)).length;
  expect(await prisma.leaderboardConfigSummary.count()).toBe(configCount);
  expect(await prisma.heatmapCellSummary.count()).toBe(Number((await prisma.$queryRawUnsafe<{ n: bigint }[]>(`SELECT count(*) AS n FROM (SELECT DISTINCT pr.sweep_id, r.untrained, r.model_name, pr.noise_level, pr.layer, pr.method, pr.labels FROM probe_results pr JOIN runs r ON r.id = pr.run_id) k`))[0].n));
}

describe('leaderboard summaries kept on write (real Postgres)', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
  });

  afterAll(async () => {
    await db.drop();
  });

  it('equal the raw rows after sweeps, a retried job (which changes no summary row), a changed rewrite, concurrent seeds and the backfill', async () => {
    const a = await seedFinishedSweep(db.prisma, { name: 'three-seeds', seeds: [0, 1, 2], timesteps: [4, 25] });
    const b = await seedFinishedSweep(db.prisma, { name: 'control-wins', seeds: [3, 5], timesteps: [8], untrainedWins: true, labels: [20, 200] });
    await expectSummariesMatchRawRows(db.prisma, [a.sweepId, b.sweepId], { cells: true });
    // Two label budgets beside all: every view keyed by budget, numbers never mixed.
    const leaderboard = new LeaderboardRepository(db.prisma);
    expect(await leaderboard.budgets(b.sweepId)).toEqual([20, 200, null]);
    expect(await leaderboard.budgets(a.sweepId)).toEqual([null]);
    const at20 = await leaderboard.top({ per: 'cell', labels: 20, limit: 500 });
    expect(at20.length).toBeGreaterThan(0);
    expect(at20.every((r) => r.labels === 20 && r.sweepId === b.sweepId && r.protocolKey.endsWith(';labels=20'))).toBe(true);
    expect((await leaderboard.top({ per: 'cell', limit: 500 })).every((r) => r.labels === null)).toBe(true);
    expect((await leaderboard.verdict(b.sweepId, 20)).best?.mean).toBeLessThan((await leaderboard.verdict(b.sweepId)).best?.mean ?? 0);
    expect((await leaderboard.verdict(b.sweepId, 20)).pixels?.protocolKey).toMatch(/;labels=20$/);
    expect(await leaderboard.heatmap(a.sweepId, 20)).toEqual([]);
    const curves = await leaderboard.labelCurves(b.sweepId);
    expect(curves.budgets).toEqual([20, 200, null]);
    expect(curves.models.map((m) => [m.modelName, m.untrained, m.points.map((p) => p.labels)])).toEqual([
      ['ddpm-small', false, [20, 200, null]],
      ['ddpm-small', true, [20, 200, null]],
    ]);
    const trained = curves.models[0];
    expect(trained.points.map((p) => p.mean)).toEqual([...trained.points.map((p) => p.mean)].sort((x, y) => x - y));
    expect(trained.points.at(-1)?.mean).toBe((await leaderboard.verdict(b.sweepId)).best?.mean);
    expect(curves.pixels.map((p) => p.labels)).toEqual([20, 200, null]);

    // A retried job writes the same results again: no summary row changes (not even updated_at).
    const snapshot = async () =>
      JSON.stringify([
        (await db.prisma.leaderboardRunSummary.findMany({ orderBy: [{ runId: 'asc' }, { labels: 'asc' }] })).map(({ id: _id, ...r }) => r),
        await db.prisma.leaderboardConfigSummary.findMany({ orderBy: [{ sweepId: 'asc' }, { modelName: 'asc' }, { untrained: 'asc' }, { protocolKey: 'asc' }, { noiseLevel: 'asc' }, { layer: 'asc' }] }),
        (await db.prisma.heatmapCellSummary.findMany({ orderBy: [{ sweepId: 'asc' }, { untrained: 'asc' }, { labels: 'asc' }, { noiseLevel: 'asc' }, { layer: 'asc' }] })).map(({ id: _id, ...r }) => r),
      ]);
    const before = await snapshot();
    const probes = new ProbeRepository(db.prisma);
    const task = await db.prisma.probeTask.findFirstOrThrow({ where: { runId: a.runs['ddpm-small-s1'], noiseLevel: 4 } });
    const run = await db.prisma.run.findUniqueOrThrow({ where: { id: task.runId } });
    const checkpoint = await db.prisma.checkpoint.findFirstOrThrow({ where: { runId: run.id, final: true } });
    const context = { checkpointId: checkpoint.id, dataset: run.dataset, method: run.method, untrained: false, backend: 'native', workerId: 'retry-worker' };
    const same = task.layers.map((layer) => ({ layer, accuracy: a.accuracy(run.key, layer, 4), featureDim: 1024 }));
    await probes.complete(task, context, same);
    await probes.complete(task, context, same);
    expect(await snapshot()).toBe(before);
    // The same for a task with budgets: its `all` summaries are not duplicated (NULLS NOT DISTINCT), nor its budgets'.
    const budgeted = await db.prisma.probeTask.findFirstOrThrow({ where: { runId: b.runs['ddpm-small-s3'], noiseLevel: 8 } });
    const bRun = await db.prisma.run.findUniqueOrThrow({ where: { id: budgeted.runId } });
    const bCheckpoint = await db.prisma.checkpoint.findFirstOrThrow({ where: { runId: bRun.id, final: true } });
    const bContext = { ...context, checkpointId: bCheckpoint.id };
    const bSame = [20, 200, undefined].flatMap((labels) => budgeted.layers.map((layer) => ({ layer, ...(labels ? { labels } : {}), accuracy: b.accuracy(bRun.key, layer, 8, labels), featureDim: 1024 })));
    await probes.complete(budgeted, bContext, bSame);
    expect(await snapshot()).toBe(before);

    // A rewrite that measured differently (the upsert keeps the last): the summaries follow it, up and down.
    await probes.complete(task, context, same.map((r, i) => ({ ...r, accuracy: i === 0 ? 0.99 : r.accuracy - 0.05 })));
    await expectSummariesMatchRawRows(db.prisma, [a.sweepId, b.sweepId]);
    expect((await new LeaderboardRepository(db.prisma).top({ per: 'run', limit: 1 }))[0]).toMatchObject({ accuracy: 0.99, runKey: 'ddpm-small-s1' });
    await probes.complete(task, context, same);
    await expectSummariesMatchRawRows(db.prisma, [a.sweepId, b.sweepId]);

    // Three seeds of one model finishing the same cell at once: none misses the others' rows.
    const tasks = await db.prisma.probeTask.findMany({ where: { sweepId: a.sweepId, noiseLevel: 25, run: { untrained: false } }, include: { run: true } });
    expect(tasks).toHaveLength(3);
    await Promise.all(
      tasks.map(async (t, k) => {
        const final = await db.prisma.checkpoint.findFirstOrThrow({ where: { runId: t.runId, final: true } });
        await probes.complete(t, { ...context, checkpointId: final.id }, t.layers.map((layer, i) => ({ layer, accuracy: 0.5 + 0.01 * k + 0.001 * i, featureDim: 1024 })));
      }),
    );
    await expectSummariesMatchRawRows(db.prisma, [a.sweepId, b.sweepId]);

    // A parameter count recorded after the results: the cells that show it follow.
    await new RunRepository(db.prisma).setParameters(a.runs['ddpm-small-s2'], 400_000);
    await expectSummariesMatchRawRows(db.prisma, [a.sweepId, b.sweepId]);

    // The backfill (rebuildSummaries; the statements of migration 20261130175158, keyed by label
    // budget since 20261201000100) rebuilds the same rows from the results alone.
    const after = await snapshot();
    await db.prisma.$executeRawUnsafe('TRUNCATE leaderboard_runs, leaderboard_configs, heatmap_cells');
    await rebuildSummaries(db.prisma);
    await expectSummariesMatchRawRows(db.prisma, [a.sweepId, b.sweepId], { cells: true });
    const strip = (json: string) => json.replace(/"updatedAt":"[^"]+"/g, '');
    expect(strip(await snapshot())).toBe(strip(after));
  });
});
