import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { apiEnvSchema } from '@ddae/config';
import { decoderBlockNames, resolveUNet, type GenerationList, type ProgressView, type SampleList } from '@ddae/contracts';
import { ResultsRepository, RunGenerationQualityRepository } from '@ddae/db';
import { createTestDatabase, deleteQueueKeys, seedFinishedSweep, uniqueQueuePrefix, type FinishedSweep, type TestDatabase } from '@ddae/testing';
import { createApiApp } from '../bootstrap';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** The fixture's results were computed on this adapter (quotes and commas: CSV quoting matters). */
const GPU = 'GPU 0 "NVIDIA H200" (nvidia hopper, vulkan; NVIDIA 570.124.06)';

/** A minimal RFC 4180 reader (quoted fields, doubled quotes), enough to check what the API writes. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted && ch === '"' && text[i + 1] === '"') {
      field += '"';
      i++;
    } else if (quoted && ch === '"') {
      quoted = false;
    } else if (quoted) {
      field += ch;
    } else if (ch === '"') {
      quoted = true;
    } else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n') {
      row.push(field.replace(/\r$/, ''));
      rows.push(row);
      row = [];
      field = '';
    } else {
      field += ch;
    }
  }
  return rows;
}

describe('results, verdict, loss, samples and short ids (real Postgres)', () => {
  let db: TestDatabase;
  let app: INestApplication;
  let prefix: string;
  let sweep: FinishedSweep;
  const http = () => request(app.getHttpServer());

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = uniqueQueuePrefix('results');
    const env = apiEnvSchema.parse({ DATABASE_URL: db.url, REDIS_URL, QUEUE_PREFIX: prefix, RECONCILE_MS: '0', LOG_LEVEL: 'error', API_AUTH: 'off' });
    app = await createApiApp(env);
    await app.init();
    sweep = await seedFinishedSweep(db.prisma, { name: 'results-fixture', computedOn: { backend: 'webgpu', device: GPU } });
  });

  afterAll(async () => {
    await app?.close();
    await deleteQueueKeys(REDIS_URL, prefix);
    await db?.drop();
  });

  it('streams every result of a sweep as CSV with its hyper-parameters, the untrained control included', async () => {
    const res = await http().get(`/api/sweeps/${sweep.sweepId}/results.csv`).buffer(true).parse((r, done) => {
      let text = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => (text += c));
      r.on('end', () => done(null, text));
    }).expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/csv/);
    expect(res.headers['content-disposition']).toContain(`sweep-${sweep.sweepId.slice(0, 8)}-results.csv`);
    const [header, ...rows] = parseCsv(res.body as string);
    for (const column of ['model', 'method', 'unet', 'image_size', 'steps', 'batch_size', 'learning_rate', 'seed', 'layer', 'noise_level', 'pooling', 'protocol_key', 'accuracy', 'checkpoint_step', 'backend', 'device', 'worker']) {
      expect(header).toContain(column);
    }
    const total = await db.prisma.probeResult.count({ where: { sweepId: sweep.sweepId } });
    expect(rows).toHaveLength(total);
    const at = (r: string[], c: string) => r[header.indexOf(c)];
    const untrained = rows.filter((r) => at(r, 'untrained') === 'true');
    expect(untrained.length).toBeGreaterThan(0);
    expect(untrained.every((r) => at(r, 'steps') === '0' && at(r, 'checkpoint_step') === '0')).toBe(true);
    // Every row is the stored result, with the run's hyper-parameters.
    for (const r of rows) {
      expect(Number(at(r, 'accuracy'))).toBe(sweep.accuracy(at(r, 'run'), at(r, 'layer'), Number(at(r, 'noise_level'))));
      expect(JSON.parse(at(r, 'unet'))).toMatchObject({ baseChannels: 16, channelMults: [1, 2, 2] });
      // No imageSize in this sweep's spec: Fashion-MNIST's 28 padded to 32.
      expect(at(r, 'image_size')).toBe('32');
      expect([at(r, 'batch_size'), at(r, 'learning_rate'), at(r, 'pooling'), at(r, 'backend'), at(r, 'device'), at(r, 'worker')]).toEqual(['64', '0.001', 'avg4', 'webgpu', GPU, 'fixture-worker']);
    }
    expect(rows.filter((r) => at(r, 'untrained') === 'false').map((r) => at(r, 'checkpoint_step'))).toEqual(rows.filter((r) => at(r, 'untrained') === 'false').map(() => '400'));
    // JSON lines: the same rows, the UNet as an object.
    const jsonl = await http().get(`/api/sweeps/${sweep.sweepId.slice(0, 8)}/results.jsonl`).buffer(true).parse((r, done) => {
      let text = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => (text += c));
      r.on('end', () => done(null, text));
    }).expect(200);
    const objects = (jsonl.body as string).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(objects.map((o) => o.result_id)).toEqual(rows.map((r) => at(r, 'result_id')));
    expect(objects[0].unet).toMatchObject({ baseChannels: 16 });
    expect(objects.every((o) => o.device === GPU && o.backend === 'webgpu')).toBe(true);
  });

  it('names the device that computed each result in the leaderboard, its baselines included', async () => {
    for (const per of ['cell', 'run'] as const) {
      const board = (await http().get('/api/leaderboard').query({ per, sweep: sweep.sweepId }).expect(200)).body as { rows: { device: string; backend: string }[]; baselines: { kind: string; device: string }[] };
      expect(board.rows.length).toBeGreaterThan(0);
      expect(board.rows.every((r) => r.device === GPU && r.backend === 'webgpu')).toBe(true);
      expect(board.baselines.map((b) => [b.kind, b.device]).sort()).toEqual([['pixels', GPU], ['untrained', GPU]]);
    }
    // Stored on the rows themselves: the runs and the shared baseline too.
    expect(new Set((await db.prisma.run.findMany({ where: { sweepId: sweep.sweepId } })).map((r) => r.device))).toEqual(new Set([GPU]));
    expect((await db.prisma.baseline.findMany()).map((b) => b.device)).toEqual([GPU]);
  });

  it('names the device of probing during pretraining, each sample grid and FID/KID, as the run\'s', async () => {
    // FID and KID as a worker stores them with pretrain.fid (the fixture has none).
    const runId = sweep.runs['ddpm-small-s0'];
    await new RunGenerationQualityRepository(db.prisma).record(runId, {
      step: 400, extractor: 'ddae-fmnist-cnn-v1 penultimate, 128-d', extractorSha256: 'a'.repeat(64), fid: 42.25, kidMean: 0.031, kidStd: 0.002, kidSubsets: 20, kidSubsetSize: 500,
      samples: 2000, reference: 'fashion-mnist test', referenceCount: 10_000, sampler: 'ddim', samplerSteps: 50, seed: 0, seconds: 12.5, backend: 'webgpu', device: GPU, workerId: 'fixture-worker',
    });
    const progress = (await http().get(`/api/sweeps/${sweep.sweepId}/progress`).expect(200)).body as ProgressView;
    const points = progress.runs.flatMap((r) => r.points);
    expect(points.length).toBeGreaterThan(0);
    expect(new Set(points.map((p) => p.device))).toEqual(new Set([GPU]));
    const samples = (await http().get(`/api/sweeps/${sweep.sweepId}/samples`).expect(200)).body as SampleList;
    expect(samples.samples.map((s) => [s.run, s.device])).toEqual([['ddpm-small-s0', GPU], ['ddpm-small-s1', GPU]]);
    const generation = (await http().get(`/api/sweeps/${sweep.sweepId}/generation`).expect(200)).body as GenerationList;
    expect(generation.runs.map((g) => [g.run, g.backend, g.device])).toEqual([['ddpm-small-s0', 'webgpu', GPU]]);
    // Stored on the rows themselves.
    for (const rows of [await db.prisma.progressProbe.findMany({ where: { sweepId: sweep.sweepId } }), await db.prisma.runSample.findMany({ where: { sweepId: sweep.sweepId }, omit: { png: true } }), await db.prisma.runGenerationQuality.findMany({ where: { sweepId: sweep.sweepId } })]) {
      expect(rows.length).toBeGreaterThan(0);
      expect(new Set(rows.map((r) => r.device))).toEqual(new Set([GPU]));
    }
    await db.prisma.runGenerationQuality.deleteMany({ where: { sweepId: sweep.sweepId } });
  });

  it('reads the export in keyset batches: any batch size gives the same rows, each once', async () => {
    const results = new ResultsRepository(db.prisma);
    const collect = async (size: number) => {
      const out: string[] = [];
      let batches = 0;
      for await (const batch of results.batches(sweep.sweepId, size)) {
        expect(batch.length).toBeLessThanOrEqual(size);
        batches++;
        out.push(...batch.map((r) => r.resultId));
      }
      return { out, batches };
    };
    const whole = await collect(10_000);
    const small = await collect(7);
    expect(small.out).toEqual(whole.out);
    expect(new Set(small.out).size).toBe(small.out.length);
    expect(small.batches).toBe(Math.ceil(whole.out.length / 7));
  });

  it('pages the leaderboard with a cursor: every row once, ranks continuing, for each ranking', async () => {
    for (const per of ['cell', 'run', 'config'] as const) {
      const all = (await http().get('/api/leaderboard').query({ per, limit: 500, sweep: sweep.sweepId }).expect(200)).body;
      expect(all.nextCursor).toBeNull();
      const seen: unknown[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = (await http().get('/api/leaderboard').query({ per, limit: 4, sweep: sweep.sweepId, ...(cursor ? { cursor } : {}) }).expect(200)).body;
        seen.push(...page.rows);
        cursor = page.nextCursor ?? undefined;
        pages++;
      } while (cursor);
      expect(seen).toEqual(all.rows);
      expect((seen as { rank: number }[]).map((r) => r.rank)).toEqual(all.rows.map((_: unknown, i: number) => i + 1));
      expect(pages).toBe(Math.ceil(all.rows.length / 4));
      // Controls are never ranked.
      expect(JSON.stringify(all.rows)).not.toContain('untrained');
    }
    const bad = await http().get('/api/leaderboard').query({ cursor: 'not-a-cursor' }).expect(400);
    expect(bad.body.issues[0].path).toBe('query.cursor');
    const cellCursor = (await http().get('/api/leaderboard').query({ limit: 1 }).expect(200)).body.nextCursor;
    await http().get('/api/leaderboard').query({ per: 'config', cursor: cellCursor }).expect(400);
  });

  it('ranks per=run (each trained run\'s best cell) and per=config (mean and spread over seeds per cell) over HTTP, from the stored results', async () => {
    const layers = decoderBlockNames({ ...resolveUNet('small'), imageSize: 32, imageChannels: 1 });
    const levels = [4, 8, 25];
    const cells = layers.flatMap((layer) => levels.map((noiseLevel) => ({ layer, noiseLevel })));
    const runs = ['ddpm-small-s0', 'ddpm-small-s1'];

    const perRun = (await http().get('/api/leaderboard').query({ per: 'run', sweep: sweep.sweepId, limit: 500 }).expect(200)).body;
    expect(perRun.filter.per).toBe('run');
    expect(perRun.rows.map((r: { runKey: string }) => r.runKey).sort()).toEqual(runs);
    for (const row of perRun.rows as { runKey: string; layer: string; noiseLevel: number; accuracy: number }[]) {
      const best = Math.max(...cells.map((c) => sweep.accuracy(row.runKey, c.layer, c.noiseLevel)));
      expect(row.accuracy).toBeCloseTo(best, 12);
      expect(sweep.accuracy(row.runKey, row.layer, row.noiseLevel)).toBeCloseTo(best, 12);
    }

    const perConfig = (await http().get('/api/leaderboard').query({ per: 'config', sweep: sweep.sweepId, limit: 500 }).expect(200)).body;
    const rows = perConfig.rows as { layer: string; noiseLevel: number; mean: number; std: number | null; n: number; seeds: number[] }[];
    expect(rows).toHaveLength(cells.length);
    for (const row of rows) {
      const xs = runs.map((r) => sweep.accuracy(r, row.layer, row.noiseLevel));
      const mean = (xs[0] + xs[1]) / 2;
      expect(row).toMatchObject({ n: 2, seeds: [0, 1] });
      expect(row.mean).toBeCloseTo(mean, 12);
      expect(row.std).toBeCloseTo(Math.sqrt(((xs[0] - mean) ** 2 + (xs[1] - mean) ** 2) / 1), 12);
    }
    expect(rows.map((r) => r.mean)).toEqual([...rows.map((r) => r.mean)].sort((a, b) => b - a));
    await http().get('/api/leaderboard').query({ per: 'seed' }).expect(400);
  });

  it('names the untrained baseline\'s cell beside the ranking', async () => {
    const board = (await http().get('/api/leaderboard').query({ sweep: sweep.sweepId.slice(0, 12) }).expect(200)).body;
    const untrained = board.baselines.find((b: { kind: string }) => b.kind === 'untrained');
    expect(untrained).toMatchObject({ layer: 'out_2', noiseLevel: 4, accuracy: sweep.accuracy('ddpm-small-untrained-s0', 'out_2', 4) });
    expect(board.filter.sweep).toBe(sweep.sweepId);
  });

  it("gives the verdict: the trained models' best cell (mean over seeds) against each baseline", async () => {
    const v = (await http().get(`/api/sweeps/${sweep.sweepId}/verdict`).expect(200)).body;
    const mean = (sweep.accuracy('ddpm-small-s0', 'out_2', 4) + sweep.accuracy('ddpm-small-s1', 'out_2', 4)) / 2;
    expect(v.best).toMatchObject({ modelName: 'ddpm-small', layer: 'out_2', noiseLevel: 4, n: 2, seeds: [0, 1] });
    expect(v.best.mean).toBeCloseTo(mean, 12);
    expect(v.untrained).toMatchObject({ modelName: 'ddpm-small', layer: 'out_2', noiseLevel: 4, n: 1 });
    expect(v.pixels).toMatchObject({ accuracy: 0.826, protocolKey: v.best.protocolKey });
    expect(v.margins.pixels).toBeCloseTo(mean - 0.826, 12);
    expect(v.margins.untrained).toBeCloseTo(mean - v.untrained.mean, 12);

    // A control that scores higher is still not the best: the margin goes negative.
    const losing = await seedFinishedSweep(db.prisma, { name: 'control-wins', untrainedWins: true });
    const w = (await http().get(`/api/sweeps/${losing.sweepId}/verdict`).expect(200)).body;
    expect(w.best.modelName).toBe('ddpm-small');
    expect(w.untrained.mean).toBeGreaterThan(w.best.mean);
    expect(w.margins.untrained).toBeLessThan(0);
    const cells = (await http().get(`/api/sweeps/${losing.sweepId}/heatmap`).expect(200)).body.cells as { modelName: string; untrained: boolean }[];
    expect(cells.filter((c) => c.untrained).every((c) => c.modelName === 'ddpm-small (untrained)')).toBe(true);
    expect(cells.filter((c) => !c.untrained).every((c) => c.modelName === 'ddpm-small')).toBe(true);
  });

  it('serves the training-loss curve and the sample grid of every trained run', async () => {
    const loss = (await http().get(`/api/sweeps/${sweep.sweepId}/loss`).expect(200)).body;
    expect(loss.lossEvery).toBe(50);
    expect(loss.runs.map((r: { run: string }) => r.run)).toEqual(['ddpm-small-s0', 'ddpm-small-s1']);
    expect(loss.runs[0].points.map((p: { step: number }) => p.step)).toEqual([50, 100, 150, 200, 250, 300, 350, 400]);

    const list = (await http().get(`/api/sweeps/${sweep.sweepId}/samples`).expect(200)).body;
    expect(list.samples.map((s: { run: string; step: number; n: number; sampler: string }) => [s.run, s.step, s.n, s.sampler])).toEqual([
      ['ddpm-small-s0', 400, 16, 'ddim'],
      ['ddpm-small-s1', 400, 16, 'ddim'],
    ]);
    const png = await http().get(list.samples[0].url).buffer(true).parse((r, done) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => done(null, Buffer.concat(chunks)));
    }).expect(200);
    expect(png.headers['content-type']).toBe('image/png');
    expect((png.body as Buffer).subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    await http().get(list.samples[0].url).set('if-none-match', png.headers.etag).expect(304);
    // By run key too; the untrained control has none.
    await http().get(`/api/sweeps/${sweep.sweepId}/runs/ddpm-small-s1/samples.png`).expect(200);
    const none = await http().get(`/api/sweeps/${sweep.sweepId}/runs/ddpm-small-untrained-s0/samples.png`).expect(404);
    expect(none.body.message).toContain('no sample grid');
  });

  it('takes the short ids the page and tables show, and lists the candidates of an ambiguous one', async () => {
    const short = sweep.sweepId.slice(0, 8);
    expect((await http().get(`/api/sweeps/${short}`).expect(200)).body.id).toBe(sweep.sweepId);
    expect((await http().get(`/api/sweeps/${short.toUpperCase()}/heatmap`).expect(200)).body.sweepId).toBe(sweep.sweepId);
    const tooShort = await http().get(`/api/sweeps/${sweep.sweepId.slice(0, 7)}`).expect(400);
    expect(tooShort.body.issues[0]).toMatchObject({ path: 'path.id' });
    expect(tooShort.body.issues[0].message).toContain('at least 8 hex digits');
    await http().get('/api/sweeps/0000000f').expect(404);
    await http().get('/api/sweeps/not-hex!').expect(400);

    // Two sweeps that share their first 8 digits: the short id is ambiguous, a longer one is not.
    const base = { name: 'twin', dataset: 'fashion-mnist', spec: {}, specHash: 'x' };
    await db.prisma.sweep.create({ data: { ...base, id: 'abcdef12-0000-4000-8000-000000000001' } });
    await db.prisma.sweep.create({ data: { ...base, id: 'abcdef12-0000-4000-8000-000000000002' } });
    const ambiguous = await http().get('/api/sweeps/abcdef12').expect(409);
    expect(ambiguous.body.message).toContain('abcdef12-0000-4000-8000-000000000001');
    expect(ambiguous.body.candidates.map((c: { id: string }) => c.id).sort()).toEqual(['abcdef12-0000-4000-8000-000000000001', 'abcdef12-0000-4000-8000-000000000002']);
    expect((await http().get('/api/sweeps/abcdef12-0000-4000-8000-00000000003').expect(404)).body.message).toContain('no sweep id starts with');
    expect((await http().get('/api/sweeps/abcdef12-0000-4000-8000-00000000000').expect(409)).body.candidates).toHaveLength(2);
    // Hyphens are optional in a prefix.
    expect((await http().get('/api/sweeps/abcdef1200004000800000000000000').expect(409)).body.candidates).toHaveLength(2);
    expect((await http().get('/api/sweeps/abcdef12-0000-4000-8000-000000000002').expect(200)).body.id).toBe('abcdef12-0000-4000-8000-000000000002');
  });

  // Last: its baselines (one per budget) would change the tests above.
  it('reads a sweep at each label budget: leaderboard, heatmap, verdict, curves and export say their budget, and never mix them', async () => {
    const budgets = await seedFinishedSweep(db.prisma, { name: 'budgets-fixture', labels: [20, 200] });
    type Board = { filter: { labels: number | 'all' }; rows: { labels: number | 'all'; accuracy: number; runKey: string; layer: string; noiseLevel: number }[]; baselines: { kind: string; labels: number | 'all'; accuracy: number }[] };
    for (const labels of [20, 200, 'all'] as const) {
      const board = (await http().get('/api/leaderboard').query({ sweep: budgets.sweepId, labels, limit: 500 }).expect(200)).body as Board;
      expect(board.filter.labels).toBe(labels);
      expect(board.rows).toHaveLength(2 * 27);
      for (const r of board.rows) {
        expect(r.labels).toBe(labels);
        expect(r.accuracy).toBe(budgets.accuracy(r.runKey, r.layer, r.noiseLevel, labels === 'all' ? undefined : labels));
      }
      expect(board.baselines.map((b) => [b.kind, b.labels]).sort()).toEqual([['pixels', labels], ['untrained', labels]]);
      const heat = (await http().get(`/api/sweeps/${budgets.sweepId}/heatmap`).query({ labels }).expect(200)).body as { labels: unknown; budgets: unknown[]; cells: { labels: unknown }[] };
      expect([heat.labels, heat.budgets]).toEqual([labels, [20, 200, 'all']]);
      expect(heat.cells.length).toBe(2 * 27);
      expect(heat.cells.every((c) => c.labels === labels)).toBe(true);
      const verdict = (await http().get(`/api/sweeps/${budgets.sweepId}/verdict`).query({ labels }).expect(200)).body as { labels: unknown; best: { labels: unknown; mean: number }; pixels: { protocolKey: string } };
      expect([verdict.labels, verdict.best.labels]).toEqual([labels, labels]);
      expect(verdict.pixels.protocolKey.endsWith(`;labels=${labels}`)).toBe(labels !== 'all');
    }
    // No budget named: all, as before budgets were.
    expect(((await http().get('/api/leaderboard').query({ sweep: budgets.sweepId }).expect(200)).body as Board).filter.labels).toBe('all');
    // A budget the sweep lacks: nothing, not the numbers of another budget.
    expect(((await http().get('/api/leaderboard').query({ sweep: budgets.sweepId, labels: 50 }).expect(200)).body as Board).rows).toEqual([]);
    for (const bad of ['0', 'few', '-3', '1.5']) {
      const res = await http().get('/api/leaderboard').query({ labels: bad }).expect(400);
      expect(res.body.issues).toEqual([{ path: 'query.labels', message: expect.stringContaining('positive whole number') }]);
      expect((await http().get(`/api/sweeps/${budgets.sweepId}/heatmap`).query({ labels: bad }).expect(400)).body.issues[0].path).toBe('query.labels');
    }
    const curves = (await http().get(`/api/sweeps/${budgets.sweepId}/labels`).expect(200)).body as { budgets: unknown[]; models: { untrained: boolean; points: { labels: unknown }[] }[]; pixels: { labels: unknown }[] };
    expect(curves.budgets).toEqual([20, 200, 'all']);
    expect(curves.models.map((m) => [m.untrained, m.points.map((p) => p.labels)])).toEqual([[false, [20, 200, 'all']], [true, [20, 200, 'all']]]);
    expect(curves.pixels.map((p) => p.labels)).toEqual([20, 200, 'all']);
    // The export: a labels column, every result once per budget.
    const csv = (await http().get(`/api/sweeps/${budgets.sweepId}/results.csv`).buffer(true).parse((r, done) => {
      let text = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => (text += c));
      r.on('end', () => done(null, text));
    }).expect(200)).body as string;
    const [header, ...rows] = parseCsv(csv);
    const at = (r: string[], c: string) => r[header.indexOf(c)];
    expect(header).toContain('labels');
    expect(rows).toHaveLength(3 * 81);
    for (const r of rows) {
      const labels = at(r, 'labels') === 'all' ? undefined : Number(at(r, 'labels'));
      expect(Number(at(r, 'accuracy'))).toBe(budgets.accuracy(at(r, 'run'), at(r, 'layer'), Number(at(r, 'noise_level')), labels));
    }
    expect([...new Set(rows.map((r) => at(r, 'labels')))].sort()).toEqual(['20', '200', 'all']);
  });
});
