import * as fs from 'node:fs';
import path from 'node:path';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { PNG } from 'pngjs';
import { apiEnvSchema } from '@ddae/config';
import { Chromium, createTestDatabase, deleteQueueKeys, seedFinishedSweep, seedGenerationQuality, uniqueQueuePrefix, type BrowserPage, type FinishedSweep, type TestDatabase } from '@ddae/testing';
import { createApiApp } from '../bootstrap';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Set it to keep the screenshots (desktop.png, phone.png) for a person to look at. */
const SHOTS = process.env.DDAE_SCREENSHOT_DIR;

jest.setTimeout(120_000);

/** A DOMRect as JSON. */
interface Box {
  left: number;
  right: number;
  top: number;
  height: number;
}

/**
 * The web page in headless Chromium at desktop (1400 px) and phone (390 px) sizes, against the real
 * API on a real database holding two finished sweeps: one where the trained model beats both
 * baselines, one where the untrained control scores higher (which the page must not crown).
 */
describe('the web page in headless Chromium (real API, real Postgres)', () => {
  let db: TestDatabase;
  let app: NestExpressApplication;
  let prefix: string;
  let base: string;
  let browser: Chromium;
  let wins: FinishedSweep;
  let loses: FinishedSweep;

  beforeAll(async () => {
    db = await createTestDatabase();
    wins = await seedFinishedSweep(db.prisma, { name: 'trained-wins', finetuned: 0.9 });
    loses = await seedFinishedSweep(db.prisma, { name: 'control-wins', untrainedWins: true });
    // FID and KID of the first sweep's runs (what a worker stores with pretrain.fid); the other has none.
    await seedGenerationQuality(db.prisma, wins, { fid: 42.5, workerId: 'w-page' });
    prefix = uniqueQueuePrefix('web-page');
    const env = apiEnvSchema.parse({ DATABASE_URL: db.url, REDIS_URL, QUEUE_PREFIX: prefix, RECONCILE_MS: '0', LOG_LEVEL: 'error', API_AUTH: 'off' });
    app = await createApiApp(env);
    await app.listen(0, '127.0.0.1');
    const address = app.getHttpServer().address() as { port: number };
    base = `http://127.0.0.1:${address.port}`;
    browser = await Chromium.launch();
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await deleteQueueKeys(REDIS_URL, prefix);
    await db?.drop();
  });

  async function open(url: string, viewport: { width: number; height: number; mobile?: boolean }): Promise<BrowserPage> {
    const page = await browser.newPage(viewport);
    await page.goto(`${base}${url}`);
    await page.waitFor('the page to load its data', "document.body.getAttribute('data-loaded') === 'true' && document.querySelectorAll('#samples img').length === 2");
    await page.waitFor('the sample grids to decode', "[...document.querySelectorAll('#samples img')].every((i) => i.complete && i.naturalWidth > 0)");
    return page;
  }

  async function keep(page: BrowserPage, name: string): Promise<void> {
    const png = await page.screenshot();
    const decoded = PNG.sync.read(png);
    expect(decoded.width).toBeGreaterThan(0);
    if (SHOTS) {
      fs.mkdirSync(SHOTS, { recursive: true });
      fs.writeFileSync(path.join(SHOTS, `${name}.png`), png);
    }
  }

  const text = (page: BrowserPage, selector: string) => page.evaluate<string>(`document.querySelector(${JSON.stringify(selector)})?.innerText ?? ''`);

  /** The panels that show a failure, by id: the error's name, the endpoint named and the text shown. */
  const panelErrors = (page: BrowserPage) =>
    page.evaluate<Record<string, { error: string; endpoint: string; text: string }>>(
      "Object.fromEntries([...document.querySelectorAll('.panel-error')].map((e) => [e.parentElement.id, { error: e.dataset.error, endpoint: e.dataset.endpoint, text: e.innerText }]))",
    );

  /** Every panel the page loads, each with the endpoint it reads (the sweep's through the link's whole id), its query left out. */
  const panels = (sweepId: string): Record<string, string> => ({
    sweeps: 'GET /api/sweeps',
    verdict: `GET /api/sweeps/${sweepId}/verdict`,
    heatmaps: `GET /api/sweeps/${sweepId}/heatmap`,
    loss: `GET /api/sweeps/${sweepId}/loss`,
    progress: `GET /api/sweeps/${sweepId}/progress`,
    samples: `GET /api/sweeps/${sweepId}/samples`,
    labels: `GET /api/sweeps/${sweepId}/labels`,
    leaderboard: 'GET /api/leaderboard',
  });

  /** Waits for every panel to show its failure; none is left "loading…", nothing says it loaded. */
  async function expectEveryPanelFailed(page: BrowserPage, sweepId: string, error: string, why: (panel: string) => RegExp): Promise<void> {
    const expected = panels(sweepId);
    await page.waitFor('every panel to show its failure', `document.querySelectorAll('.panel-error').length === ${Object.keys(expected).length}`);
    const shown = await panelErrors(page);
    expect(Object.fromEntries(Object.entries(shown).map(([id, e]) => [id, e.endpoint.split('?')[0]]))).toEqual(expected);
    for (const [id, e] of Object.entries(shown)) {
      expect(e.error).toBe(error);
      expect(e.text).toContain(`Could not load ${e.endpoint}: `);
      expect(e.text).toMatch(why(id));
    }
    expect(await page.evaluate("document.body.innerText.includes('loading…')")).toBe(false);
    expect(await page.evaluate('document.getElementById("labels-box").hidden')).toBe(false);
    expect(await page.evaluate("document.querySelector('#status .error')?.dataset.error")).toBe(error);
    expect(await page.evaluate("document.body.getAttribute('data-loaded')")).toBeNull();
    // Nothing drawn from an answer that failed.
    expect(await page.evaluate('document.querySelectorAll("#heatmaps table, #loss svg, #progress svg, #labels svg, #samples img, #leaderboard table").length')).toBe(0);
  }

  it('at 1400 px: the headline compares the best trained cell with both baselines, and never crowns the control', async () => {
    const page = await open(`/?sweep=${loses.sweepId}`, { width: 1400, height: 900 });
    const verdict = await text(page, '#verdict');
    // Trained best: out_2, t=4, seeds 0 and 1: (0.838 + 0.840) / 2.
    expect(verdict).toContain('Best trained cell: ddpm-small, out_2, t=4: 83.90 %');
    expect(verdict).toContain('mean over 2 seeds');
    expect(verdict).toContain('raw pixels (logistic regression, same protocol): 82.60 %: the best trained cell is +1.30 points');
    expect(verdict).toContain('untrained network: best cell out_2, t=4 86.00 %: the best trained cell is −2.10 points (below the control)');
    // Not fine-tuned: no such line.
    expect(verdict).not.toContain('fine-tuned');
    // One outlined cell, in the trained grid; the control's grid is labelled as such.
    const grids = await page.evaluate<{ untrained: string; title: string; best: number }[]>(
      "[...document.querySelectorAll('#heatmaps .heatmap')].map((g) => ({ untrained: g.dataset.untrained, title: g.querySelector('h3').innerText, best: g.querySelectorAll('td.cell.best').length }))",
    );
    expect(grids.map((g) => [g.untrained, g.best])).toEqual([['false', 1], ['true', 0]]);
    expect(grids[0].title).toContain('trained');
    expect(grids[1].title).toContain('untrained network · control, not ranked');
    expect(await page.evaluate('document.querySelector("td.cell.best").dataset.layer + "@" + document.querySelector("td.cell.best").dataset.noise')).toBe('out_2@4');
    // Axis titles, and what t and "deepest first" mean, said once.
    const body = await page.evaluate<string>('document.body.innerText');
    expect(body.match(/t is the DDPM timestep/g)).toHaveLength(1);
    expect(body.match(/deepest first/g)).toHaveLength(1);
    for (const axis of ['noise level t →', 'layer ↓']) expect(body).toContain(axis);
    const chartTitles = await page.evaluate<string[]>("[...document.querySelectorAll('svg.chart text.title')].map((t) => t.textContent)");
    expect(chartTitles).toEqual(['optimiser step', 'training loss', 'optimiser step', 'probe accuracy (%)']);
    // The loss curve and the accuracy curve side by side, one line per run; the samples served by REST.
    expect(await page.evaluate('document.querySelectorAll("#loss polyline").length')).toBe(2);
    expect(await page.evaluate('document.querySelectorAll("#progress polyline").length')).toBe(2);
    const [lossBox, progressBox] = await page.evaluate<{ top: number; left: number }[]>("['#loss-box', '#progress-box'].map((s) => document.querySelector(s).getBoundingClientRect()).map((r) => ({ top: r.top, left: r.left }))");
    expect(lossBox.top).toBe(progressBox.top);
    expect(lossBox.left).toBeLessThan(progressBox.left);
    expect(await page.evaluate("[...document.querySelectorAll('#samples img')].map((i) => new URL(i.src).pathname)")).toEqual([
      `/api/sweeps/${loses.sweepId}/runs/${loses.runs['ddpm-small-s0']}/samples.png`,
      `/api/sweeps/${loses.sweepId}/runs/${loses.runs['ddpm-small-s1']}/samples.png`,
    ]);
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBe(1400);
    // Nothing behind hover: no tooltips anywhere.
    expect(await page.evaluate('document.querySelectorAll("body [title], body title").length')).toBe(0);
    await keep(page, 'desktop');
    expect(page.problems).toEqual([]);
    await page.close();
  });

  it('keeps the filters, the sort and the selected sweep in the URL (a permalink), sorts columns and pages with "more"', async () => {
    const page = await open(`/?sweep=${wins.sweepId.slice(0, 8)}`, { width: 1400, height: 900 });
    // A short id in the link selects the sweep and the URL is rewritten to the whole id.
    expect(await page.evaluate('document.getElementById("sweep-select").value')).toBe(wins.sweepId);
    expect(await page.evaluate('location.search')).toBe(`?sweep=${wins.sweepId}`);
    expect(await text(page, '#verdict')).toContain('untrained network: best cell out_2, t=4 81.20 %: the best trained cell is +2.70 points');
    // Probe to choose, fine-tune to deploy: the best cell fine-tuned (0.900 and 0.902) beside its linear mean (0.839).
    expect(await text(page, '#verdict')).toContain('fine-tuned end to end at this cell (all training labels, mean over 2 seeds): 90.10 %: +6.20 points against its linear probe');

    // Every cell, both sweeps: 2 x 27 trained cells each; 20 per page, then "more".
    expect(await page.evaluate('document.querySelectorAll("#leaderboard tbody tr").length')).toBe(20);
    await page.click('#leaderboard-more button');
    await page.waitFor('the second page', 'document.querySelectorAll("#leaderboard tbody tr").length === 40');
    const ranks = await page.evaluate<number[]>('[...document.querySelectorAll("#leaderboard td[data-key=rank]")].map((t) => Number(t.innerText))');
    expect(ranks).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));

    // Sort by layer (a real click on its header), then by accuracy ascending.
    await page.click('#leaderboard th button[data-key=layer]');
    const layers = await page.evaluate<string[]>('[...document.querySelectorAll("#leaderboard td[data-key=layer]")].map((t) => t.innerText)');
    const order = (l: string) => Number(l.slice(4));
    expect(layers.map(order)).toEqual([...layers.map(order)].sort((a, b) => a - b));
    expect(await page.evaluate('document.querySelector("#leaderboard th[aria-sort=ascending] button").dataset.key')).toBe('layer');
    await page.click('#leaderboard th button[data-key=accuracy]');
    const accuracies = await page.evaluate<number[]>('[...document.querySelectorAll("#leaderboard td[data-key=accuracy]")].map((t) => Number(t.innerText))');
    expect(accuracies).toEqual([...accuracies].sort((a, b) => b - a));

    // Filters go into the URL; the link restores them.
    await page.evaluate(`(() => { const s = document.getElementById('f-per'); s.value = 'config'; s.dispatchEvent(new Event('change')); const b = document.getElementById('f-sweep'); b.value = ${JSON.stringify(loses.sweepId)}; b.dispatchEvent(new Event('change')); })()`);
    await page.waitFor('the config ranking', 'document.querySelector("#leaderboard td[data-key=mean]") !== null && document.querySelectorAll("#leaderboard tbody tr").length === 20');
    await page.click('#leaderboard th button[data-key=seeds]');
    const link = await page.evaluate<string>('location.href');
    const params = new URL(link).searchParams;
    expect(Object.fromEntries(params)).toEqual({ sweep: wins.sweepId, board: loses.sweepId, per: 'config', sort: 'seeds-desc' });
    await page.close();

    const again = await open(new URL(link).pathname + new URL(link).search, { width: 1400, height: 900 });
    expect(await again.evaluate('["sweep-select", "f-per", "f-sweep"].map((id) => document.getElementById(id).value)')).toEqual([wins.sweepId, 'config', loses.sweepId]);
    expect(await again.evaluate('document.querySelector("#leaderboard th[aria-sort=descending] button").dataset.key')).toBe('seeds');
    expect(await again.evaluate('[...document.querySelectorAll("#leaderboard td[data-key=sweep]")].every((t) => t.innerText.startsWith("control-wins"))')).toBe(true);
    expect(again.problems).toEqual([]);
    await again.close();
  });

  it('shows each run\'s FID in its own column beside the accuracy, a dash where none was measured', async () => {
    const page = await open(`/?sweep=${wins.sweepId}&per=run`, { width: 1400, height: 900 });
    await page.waitFor('the per-run leaderboard', 'document.querySelector("#leaderboard td[data-key=fid]") !== null');
    const rows = await page.evaluate<{ sweep: string; fid: string; accuracy: string }[]>(`[...document.querySelectorAll('#leaderboard tbody tr')].map((tr) => ({
      sweep: tr.querySelector('td[data-key=sweep]').innerText, fid: tr.querySelector('td[data-key=fid]').innerText, accuracy: tr.querySelector('td[data-key=accuracy]').innerText }))`);
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      // The FID, and beneath it KID and the sample count.
      expect(r.fid.replace(/\s+/g, ' ')).toBe(r.sweep.startsWith('trained-wins') ? '42.5 KID 3.1e-2 ± 2e-3 · 2,000 samples' : '–');
      // The accuracy column is untouched by it.
      expect(r.accuracy).toMatch(/^\d+\.\d\d$/);
    }
    expect(new Set(rows.map((r) => r.fid)).size).toBe(2);
    expect(await text(page, '#glossary')).toMatch(/FID column .* ddae-fmnist-cnn-v1 .* never enters the ranking/s);
    expect(page.problems).toEqual([]);
    await page.close();
  });

  it('at 390 px: fits the screen, shows layer and noise of every leaderboard row, charts that fit, details on tap', async () => {
    const page = await open(`/?sweep=${loses.sweepId}`, { width: 390, height: 844, mobile: true });
    // Nothing is wider than the phone (wide heatmaps scroll inside their own box).
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBe(390);
    const rows = await page.evaluate<{ layer: Box; noise: Box; label: string }[]>(`[...document.querySelectorAll('#leaderboard tbody tr')].map((tr) => ({
      layer: tr.querySelector('td[data-key=layer]').getBoundingClientRect().toJSON(),
      noise: tr.querySelector('td[data-key=noise]').getBoundingClientRect().toJSON(),
      label: getComputedStyle(tr.querySelector('td[data-key=layer]'), '::before').content,
    }))`);
    expect(rows).toHaveLength(20);
    for (const r of rows) {
      for (const box of [r.layer, r.noise]) {
        expect(box.left).toBeGreaterThanOrEqual(0);
        expect(box.right).toBeLessThanOrEqual(390);
        expect(box.height).toBeGreaterThan(0);
      }
      expect(r.label).toBe('"layer"');
    }
    const charts = await page.evaluate<{ width: number; right: number }[]>("[...document.querySelectorAll('svg.chart')].map((s) => s.getBoundingClientRect()).map((r) => ({ width: r.width, right: r.right }))");
    expect(charts).toHaveLength(2);
    for (const c of charts) expect(c.right).toBeLessThanOrEqual(390);
    const heatmaps = await page.evaluate<number[]>("[...document.querySelectorAll('#heatmaps table')].map((t) => t.getBoundingClientRect().right)");
    for (const right of heatmaps) expect(right).toBeLessThanOrEqual(390);
    // What a desktop tooltip used to hide (min and max over seeds) is a tap away.
    await page.click('#heatmaps .heatmap[data-untrained=false] td.cell[data-layer=out_3][data-noise="8"]');
    expect(await text(page, '#cell-detail')).toBe(`ddpm-small, out_3, t=8: mean ${(100 * (loses.accuracy('ddpm-small-s0', 'out_3', 8) + loses.accuracy('ddpm-small-s1', 'out_3', 8)) / 2).toFixed(2)} % over 2 runs (min 82.90 %, max 83.10 %, ± 0.14)`);
    // The sort is a select on a phone (the header row is hidden).
    await page.evaluate("(() => { const s = document.getElementById('f-sort'); s.value = 'noise-asc'; s.dispatchEvent(new Event('change')); })()");
    const noises = await page.evaluate<number[]>('[...document.querySelectorAll("#leaderboard td[data-key=noise]")].map((t) => Number(t.innerText.slice(2)))');
    expect(noises).toEqual([...noises].sort((a, b) => a - b));
    expect(await page.evaluate('location.search')).toContain('sort=noise-asc');
    await page.evaluate("(() => { const s = document.getElementById('f-sort'); s.value = ''; s.dispatchEvent(new Event('change')); })()");
    await keep(page, 'phone');
    expect(page.problems).toEqual([]);
    await page.close();
  });

  it('reads every answer through the contracts: an answer off its schema is an error on the page, never drawn', async () => {
    const page = await browser.newPage({ width: 1400, height: 900 });
    // The real verdict with its best mean sent as a string: JSON read unchecked would draw it as
    // "83.90 %" as if nothing were wrong ((100 * "0.839").toFixed(2)).
    await page.rewriteResponses('*/api/sweeps/*/verdict*', (body) => {
      const verdict = JSON.parse(body) as { best: { mean: unknown } };
      verdict.best.mean = String(verdict.best.mean);
      return JSON.stringify(verdict);
    });
    await page.goto(`${base}/?sweep=${loses.sweepId}`);
    const error = await page.waitFor<string>('the contract error', "document.querySelector('#status .error[data-error=ApiContractError]')?.innerText");
    expect(error).toContain("the API's answer does not match the page's contract");
    expect(error).toContain(`GET /api/sweeps/${loses.sweepId}/verdict?labels=all`);
    expect(error).toContain('best.mean: Invalid input: expected number, received string');
    // Nothing of that sweep is drawn from it, and the page never says it loaded.
    expect(await text(page, '#verdict')).not.toContain('Best trained cell');
    expect(await page.evaluate("document.body.getAttribute('data-loaded')")).toBeNull();
    // The verdict's own panel says what failed: which endpoint, the schema path.
    const verdict = await panelErrors(page);
    expect(Object.keys(verdict)).toEqual(['verdict']);
    expect(verdict['verdict']).toMatchObject({ error: 'ApiContractError', endpoint: `GET /api/sweeps/${loses.sweepId}/verdict?labels=all` });
    expect(verdict['verdict']?.text).toContain('best.mean: Invalid input: expected number, received string');
    // The rest of the page, read through the same client, is unaffected: the sweep's other panels too.
    await page.waitFor('the leaderboard', 'document.querySelectorAll("#leaderboard tbody tr").length === 20');
    await page.waitFor('the heatmaps, curves and samples', 'document.querySelectorAll("#heatmaps table").length === 2 && document.querySelectorAll("#loss polyline").length === 2 && document.querySelectorAll("#samples img").length === 2');
    expect(await page.evaluate("document.body.innerText.includes('loading…')")).toBe(false);
    await keep(page, 'contract-error');
    expect(page.problems).toEqual([]);
    await page.close();
  });

  it('shows, in each panel, which answer was off its contract and where, instead of "loading…"', async () => {
    const page = await browser.newPage({ width: 1400, height: 900 });
    // Each answer the page reads, real, with one field of the wrong type.
    await page.rewriteResponses('*/api/*', (body, url) => {
      const json = JSON.parse(body) as Record<string, unknown>;
      const { pathname } = new URL(url);
      if (pathname === '/api/sweeps') json['sweeps'] = 42;
      else if (pathname === '/api/leaderboard') json['rows'] = 42;
      else json['sweepId'] = 42;
      return JSON.stringify(json);
    });
    await page.goto(`${base}/?sweep=${loses.sweepId}`);
    await expectEveryPanelFailed(page, loses.sweepId, 'ApiContractError', (id) =>
      id === 'sweeps' ? /sweeps: Invalid input: expected array, received number$/ : id === 'leaderboard' ? /rows: Invalid input: expected array, received number$/ : /sweepId: Invalid input: expected string, received number$/,
    );
    await keep(page, 'contract-error-panels');
    expect(page.problems).toEqual([]);
    await page.close();
  });

  it.each([
    ['an HTTP 500', { status: 500, body: JSON.stringify({ statusCode: 500, error: 'INTERNAL', message: 'internal error', errorId: '00000000-0000-4000-8000-000000000000' }) }, /: HTTP 500 internal error$/],
    ['no network', 'network' as const, /: cannot reach the API at http:\/\/127\.0\.0\.1:\d+ \(Failed to fetch\)$/],
  ])('shows, in each panel, which call failed with %s, instead of "loading…"', async (_, how, why) => {
    const page = await browser.newPage({ width: 390, height: 844, mobile: true });
    await page.failRequests(['*/api/sweeps*', '*/api/leaderboard*'], how);
    await page.goto(`${base}/?sweep=${wins.sweepId}`);
    await expectEveryPanelFailed(page, wins.sweepId, 'ApiRequestError', () => why);
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBe(390);
    // The browser's own line per failed load, nothing else.
    for (const problem of page.problems) expect(problem).toMatch(/Failed to load resource/);
    await page.close();
  });

  // Last: its sweep (two label budgets beside all) would change the other tests' leaderboards.
  it('draws accuracy against the number of labels for a sweep with several budgets, and only then', async () => {
    const budgets = await seedFinishedSweep(db.prisma, { name: 'label-budgets', labels: [20, 200] });
    const without = await open(`/?sweep=${wins.sweepId}`, { width: 1400, height: 900 });
    expect(await without.evaluate('document.getElementById("labels-box").hidden')).toBe(true);
    await without.close();
    const page = await open(`/?sweep=${budgets.sweepId}`, { width: 1400, height: 900 });
    await page.waitFor('the labels chart', 'document.getElementById("labels-box").hidden === false && document.querySelector("#labels svg.chart") !== null');
    // One line per model, its untrained control and raw pixels; one point per budget, fewest labels left.
    expect(await page.evaluate('document.querySelectorAll("#labels polyline").length')).toBe(3);
    expect(await page.evaluate('document.querySelectorAll("#labels circle").length')).toBe(9);
    const ticks = await page.evaluate<string[]>("[...document.querySelectorAll('#labels svg.chart text')].filter((t) => !t.classList.contains('title') && !t.textContent.includes('.')).map((t) => t.textContent)");
    expect(ticks).toEqual(['20', '200', 'all (4,000)']);
    const titles = await page.evaluate<string[]>("[...document.querySelectorAll('#labels svg.chart text.title')].map((t) => t.textContent)");
    expect(titles).toEqual(['labelled training images (in total, class-balanced)', 'probe accuracy (%)']);
    // The trained model at its best cell with all labels (out_2, t=4, seeds 0 and 1): from 20 labels to all.
    const mean = (labels?: number) => (budgets.accuracy('ddpm-small-s0', 'out_2', 4, labels) + budgets.accuracy('ddpm-small-s1', 'out_2', 4, labels)) / 2;
    const series = await text(page, '#labels .series');
    expect(series).toContain(`ddpm-small (out_2, t=4) ${(100 * mean(20)).toFixed(1)} % with 20 labels, ${(100 * mean()).toFixed(1)} % with all (4,000)`);
    expect(series).toContain('ddpm-small (untrained) (out_2, t=4)');
    expect(series).toContain('raw pixels');
    // The headline and heatmap stay at all labels, saying so nowhere differently from before.
    expect(await text(page, '#verdict')).toContain(`Best trained cell: ddpm-small, out_2, t=4: ${(100 * mean()).toFixed(2)} %`);
    expect(await page.evaluate('document.getElementById("labels-choice").hidden')).toBe(false);
    expect(await page.evaluate('[...document.querySelectorAll("#sweep-labels option")].map((o) => o.value)')).toEqual(['20', '200', 'all']);
    await keep(page, 'labels');
    // The verdict and heatmaps at 20 labels: they say so, and the link keeps it.
    await page.evaluate("(() => { const s = document.getElementById('sweep-labels'); s.value = '20'; s.dispatchEvent(new Event('change')); })()");
    await page.waitFor('the verdict at 20 labels', 'document.getElementById("verdict").innerText.includes("20 labels (in total, class-balanced)")');
    expect(await text(page, '#verdict')).toContain(`Best trained cell: ddpm-small, out_2, t=4: ${(100 * mean(20)).toFixed(2)} %`);
    expect(await text(page, '#verdict')).toContain('mean over 2 seeds, 20 labels');
    expect(await page.evaluate('new URLSearchParams(location.search).get("labels")')).toBe('20');
    // The leaderboard at 20 labels: that budget's accuracies only.
    await page.evaluate(`(() => { const b = document.getElementById('f-sweep'); b.value = ${JSON.stringify(budgets.sweepId)}; b.dispatchEvent(new Event('change')); const s = document.getElementById('f-labels'); s.value = '20'; s.dispatchEvent(new Event('change')); })()`);
    const best20 = (100 * Math.max(budgets.accuracy('ddpm-small-s0', 'out_2', 4, 20), budgets.accuracy('ddpm-small-s1', 'out_2', 4, 20))).toFixed(2);
    await page.waitFor('the leaderboard at 20 labels', `document.querySelector("#leaderboard td[data-key=accuracy]")?.innerText === ${JSON.stringify(best20)}`);
    expect(await page.evaluate('new URLSearchParams(location.search).get("boardLabels")')).toBe('20');
    // A link to a budget the sweep lacks falls back to all.
    const linked = await open(`/?sweep=${wins.sweepId}&labels=20`, { width: 1400, height: 900 });
    await linked.waitFor('the fallback to all', 'new URLSearchParams(location.search).get("labels") === null');
    expect(await linked.evaluate('document.getElementById("labels-choice").hidden')).toBe(true);
    expect(await text(linked, '#verdict')).toContain('Linear-probe test accuracy with all training labels');
    expect(linked.problems).toEqual([]);
    await linked.close();
    expect(page.problems).toEqual([]);
    await page.close();
  });
});
