import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { heatmapFromProbeFiles } from './heatmap.command';

// Rendering and PNG encoding take a few hundred ms; a loaded CI machine can take several seconds.
jest.setTimeout(30_000);

describe('heatmap --from (offline, from probe --json files)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ddae-heatmap-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, cells: { layer: string; noiseLevel: number; accuracy: number }[]) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, `probing...\n${JSON.stringify({ method: 'ddpm', dataset: 'fashion-mnist', accuracy: 0.8, cells })}\n`);
    return file;
  };

  it('renders one grid per file beside the baseline', async () => {
    const a = write('trained.json', [
      { layer: 'out_1', noiseLevel: 5, accuracy: 0.85 },
      { layer: 'out_1', noiseLevel: 25, accuracy: 0.83 },
      { layer: 'out_2', noiseLevel: 5, accuracy: 0.86 },
      { layer: 'out_2', noiseLevel: 25, accuracy: 0.84 },
    ]);
    const b = write('untrained.json', [{ layer: 'out_1', noiseLevel: 5, accuracy: 0.8 }]);
    const out = path.join(dir, 'h.png');
    const summary = JSON.parse((await heatmapFromProbeFiles([a, b], { labels: 'ddpm,untrained', baseline: 'pixels=0.8451', out, json: true })) ?? '') as { cells: number; grids: string[] };
    expect(summary.cells).toBe(5);
    expect(summary.grids).toEqual(['ddpm', 'untrained']);
    const png = PNG.sync.read(fs.readFileSync(out));
    expect(png.width).toBeGreaterThan(100);
    expect(png.height).toBeGreaterThan(100);
  });

  it('writes no file it was not told to: --out is required', async () => {
    const a = write('one-more.json', [{ layer: 'out_1', noiseLevel: 5, accuracy: 0.85 }]);
    const before = fs.readdirSync(process.cwd());
    await expect(heatmapFromProbeFiles([a], { json: true })).rejects.toThrow(/needs --out FILE/);
    expect(fs.readdirSync(process.cwd())).toEqual(before);
  });

  it('names the fix for bad input', async () => {
    const a = write('one.json', [{ layer: 'out_1', noiseLevel: 5, accuracy: 0.85 }]);
    await expect(heatmapFromProbeFiles([a], { labels: 'x,y', json: true })).rejects.toThrow(/one label per file/);
    await expect(heatmapFromProbeFiles([a], { baseline: 'pixels', json: true })).rejects.toThrow(/--baseline pixels=0.8451/);
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, 'not json');
    await expect(heatmapFromProbeFiles([bad], { json: true })).rejects.toThrow(/probe \.\.\. --json/);
    await expect(heatmapFromProbeFiles([path.join(dir, 'missing.json')], { json: true })).rejects.toThrow(/cannot read/);
  });
});
