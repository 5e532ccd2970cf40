import * as fs from 'node:fs';
import path from 'node:path';
import { PNG } from 'pngjs';
import { Chromium, waitFor } from '@ddae/testing';
import { childPids, startStack, type Stack } from './stack';

/**
 * The training-loss curve and the sample grid through the real worker path (compute child -> IPC ->
 * worker -> Postgres -> REST -> the page), across a kill -9 of the compute child: a tiny DDPM
 * pretrained 40 steps (a loss point every 4), its untrained control and the pixel baseline.
 */
const SWEEP = {
  name: 'e2e-loss-samples',
  dataset: 'fashion-mnist',
  models: [{ method: 'ddpm', unet: 'tiny' }],
  pretrain: { steps: 40, batchSize: 8, learningRate: 0.001, checkpointEvery: 10, trainSize: 256, seeds: [0], lossEvery: 4 },
  probe: { layers: ['out_2', 'out_4'], timesteps: [10], epochs: 3, batchSize: 64, learningRate: 0.01, trainSize: 200, testSize: 100 },
  baselines: ['pixels', 'untrained'],
};

/** Set it to keep the page's screenshots of this real (tiny) sweep for a person to look at. */
const SHOTS = process.env.DDAE_SCREENSHOT_DIR;

describe('loss curve, sample grid and the page, end to end', () => {
  let stack: Stack | undefined;
  let browser: Chromium | undefined;

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('stores each loss point once across a kill -9, samples the final checkpoint, and shows both on the page', async () => {
    const s = (stack = await startStack({ workers: 1 }));
    const submitted = await s.submit(SWEEP);
    expect(submitted).toMatchObject({ created: true, queued: true });
    const { id } = submitted;

    // Kill the compute child once a first loss point is stored: the retry resumes from step 10 or
    // earlier and reports some windows again.
    await waitFor('the first loss point', async () => ((await s.db.prisma.trainLoss.count()) > 0 ? true : undefined), { timeoutMs: 180_000, intervalMs: 50, describe: async () => s.logs() });
    const [child] = childPids(s.workers[0].child.pid as number);
    expect(child).toBeDefined();
    process.kill(child, 'SIGKILL');
    expect((await s.waitForSweep(id, 400_000)).status).toBe('SUCCEEDED');

    const run = await s.db.prisma.run.findFirstOrThrow({ where: { untrained: false } });
    const control = await s.db.prisma.run.findFirstOrThrow({ where: { untrained: true } });
    // One row per window end, none lost, none twice (the primary key is (run, step)).
    const points = await s.db.prisma.trainLoss.findMany({ where: { runId: run.id }, orderBy: { step: 'asc' } });
    expect(points.map((p) => p.step)).toEqual([4, 8, 12, 16, 20, 24, 28, 32, 36, 40]);
    for (const p of points) expect(Number.isFinite(p.loss) && p.loss > 0).toBe(true);
    expect(await s.db.prisma.trainLoss.count({ where: { runId: control.id } })).toBe(0);
    // Training lowers the loss (a DDPM at lr 1e-3 from initialisation: the first window is the highest).
    expect(points[points.length - 1].loss).toBeLessThan(points[0].loss);

    // The sample grid: a PNG beside the final checkpoint, the same bytes in Postgres, served by REST.
    const samples = await s.db.prisma.runSample.findMany();
    expect(samples.map((x) => [x.runId, x.step, x.n, x.sampler, x.samplerSteps])).toEqual([[run.id, 40, 16, 'ddim', 20]]);
    const finalCheckpoint = await s.db.prisma.checkpoint.findFirstOrThrow({ where: { runId: run.id, final: true } });
    expect(samples[0].path).toBe(path.join(path.dirname(finalCheckpoint.path), 'samples-step-00000040.png'));
    const served = await s.client.samplePng(id, run.key);
    expect(served).toEqual(Buffer.from(samples[0].png));
    const png = PNG.sync.read(served);
    // 4 x 4 images of 28 x 28 (the padding cropped) at 2x, 2 px apart.
    expect([png.width, png.height]).toEqual([4 * 56 + 5 * 2, 4 * 56 + 5 * 2]);

    const loss = await s.client.loss(id);
    expect(loss.lossEvery).toBe(4);
    expect(loss.runs.map((r) => [r.run, r.points.length])).toEqual([['ddpm-tiny-s0', 10]]);

    // The export carries the control's cells too.
    const csv = await (await s.client.results(id, 'csv')).text();
    const lines = csv.trim().split('\r\n');
    expect(lines).toHaveLength(1 + 2 * 2);
    expect(lines.filter((l) => l.includes(',ddpm-tiny-untrained-s0,'))).toHaveLength(2);

    // The page on this finished sweep, at both sizes.
    browser = await Chromium.launch();
    for (const [name, viewport] of [['e2e-desktop', { width: 1400, height: 900 }], ['e2e-phone', { width: 390, height: 844, mobile: true }]] as const) {
      const page = await browser.newPage(viewport);
      await page.goto(`${s.base}/?sweep=${id}`);
      await page.waitFor('the loss chart and the samples', "document.body.getAttribute('data-loaded') === 'true' && document.querySelectorAll('#loss polyline').length === 1 && [...document.querySelectorAll('#samples img')].some((i) => i.complete && i.naturalWidth > 0)");
      const verdict = await page.evaluate<string>("document.getElementById('verdict').innerText");
      expect(verdict).toMatch(/^Best trained cell: ddpm-tiny, out_[24], t=10: \d+\.\d\d %/);
      expect(verdict).toMatch(/raw pixels .*: \d+\.\d\d %: the best trained cell is [+−]\d+\.\d\d points/);
      expect(verdict).toMatch(/untrained network: best cell out_[24], t=10 \d+\.\d\d %/);
      expect(await page.evaluate('document.documentElement.scrollWidth')).toBe(viewport.width);
      if (SHOTS) {
        fs.mkdirSync(SHOTS, { recursive: true });
        fs.writeFileSync(path.join(SHOTS, `${name}.png`), await page.screenshot());
      }
      expect(page.problems).toEqual([]);
      await page.close();
    }
  });
});
