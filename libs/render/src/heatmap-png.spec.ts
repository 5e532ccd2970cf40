import { PNG } from 'pngjs';
import { compareLayers, heatmapVerdict, renderHeatmapPng, textWidth, type HeatmapCell } from './heatmap-png';

const cell = (layer: string, noiseLevel: number, mean: number, n = 2): HeatmapCell => ({
  modelName: 'ddpm-b16', method: 'ddpm', layer, noiseLevel, mean, std: n > 1 ? 0.004 : null, min: mean - 0.003, max: mean + 0.003, n,
});

function find<T>(items: T[], predicate: (item: T) => boolean): T {
  const found = items.find(predicate);
  if (found === undefined) throw new Error('not drawn');
  return found;
}

describe('renderHeatmapPng', () => {
  const cells = [cell('out_10', 5, 0.7), cell('out_2', 50, 0.8), cell('out_2', 5, 0.87), cell('out_1', 50, 0.55), cell('out_1', 5, 0.6), cell('out_10', 50, 0.65)];

  it('draws a decodable PNG of the size it reports, one rect per cell, rows out_1..out_N and noise ascending', () => {
    const r = renderHeatmapPng({ title: 'demo - fashion-mnist', subtitle: 'mean over 2 seeds', cells, baseline: { kind: 'pixels', accuracy: 0.81 } });
    const png = PNG.sync.read(r.png);
    expect([png.width, png.height]).toEqual([r.width, r.height]);
    expect(r.width).toBeGreaterThan(200);
    expect(r.height).toBeGreaterThan(200);
    expect(r.cells).toHaveLength(6);
    const at = (layer: string, t: number) => find(r.cells, (c) => c.layer === layer && c.noiseLevel === t);
    expect(at('out_1', 5).y).toBeLessThan(at('out_2', 5).y);
    expect(at('out_2', 5).y).toBeLessThan(at('out_10', 5).y);
    expect(at('out_1', 5).x).toBeLessThan(at('out_1', 50).x);
    for (const c of r.cells) expect(c.x + c.w <= r.width && c.y + c.h <= r.height).toBe(true);
  });

  it('colours the best cell differently from the worst, on a scale from the worst to the best', () => {
    const r = renderHeatmapPng({ title: 't', cells, baseline: null });
    const png = PNG.sync.read(r.png);
    // A pixel inside the cell, clear of its outline and its centred label.
    const colourOf = (mean: number) => {
      const c = find(r.cells, (x) => x.mean === mean);
      const i = ((c.y + 5) * png.width + (c.x + 5)) * 4;
      return [png.data[i], png.data[i + 1], png.data[i + 2]];
    };
    const best = colourOf(0.87), worst = colourOf(0.55), middle = colourOf(0.7);
    expect(best).not.toEqual(worst);
    expect(worst).toEqual([68, 1, 84]); // viridis' first stop
    expect(best).toEqual([253, 231, 37]); // and its last
    expect(middle).not.toEqual(best);
    expect(middle).not.toEqual(worst);
  });

  it('renders an empty sweep and a single cell without dividing by zero', () => {
    const empty = renderHeatmapPng({ title: 'nothing yet', cells: [] });
    expect(PNG.sync.read(empty.png).width).toBe(empty.width);
    const one = renderHeatmapPng({ title: 'one', cells: [cell('out_1', 5, 0.5, 1)] });
    expect(one.cells).toHaveLength(1);
  });
});

describe('a control is never the best', () => {
  const trained = [cell('out_1', 5, 0.8), cell('out_2', 5, 0.83)];
  const control = [
    { ...cell('out_1', 5, 0.86, 1), modelName: 'ddpm-b16 (untrained)', untrained: true },
    { ...cell('out_2', 5, 0.84, 1), modelName: 'ddpm-b16 (untrained)', untrained: true },
  ];

  it('outlines only the trained best cell, draws the control grid after the trained one, and names both in the verdict', () => {
    const r = renderHeatmapPng({ title: 't', cells: [...control, ...trained], baseline: { kind: 'pixels', accuracy: 0.82 } });
    const best = r.cells.filter((c) => c.best);
    expect(best).toHaveLength(1);
    expect(best[0]).toMatchObject({ untrained: false, layer: 'out_2', mean: 0.83 });
    const png = PNG.sync.read(r.png);
    const ink = (x: number, y: number) => {
      const i = (y * png.width + x) * 4;
      return [png.data[i], png.data[i + 1], png.data[i + 2]];
    };
    // The outline (dark ink) on the trained best's corner; the control's best cell keeps its fill colour there.
    expect(ink(best[0].x, best[0].y)).toEqual([29, 35, 48]);
    const controlBest = find(r.cells, (c) => c.untrained && c.mean === 0.86);
    expect(ink(controlBest.x, controlBest.y)).toEqual([253, 231, 37]);
    expect(Math.min(...r.cells.filter((c) => c.untrained).map((c) => c.y))).toBeGreaterThan(Math.max(...r.cells.filter((c) => !c.untrained).map((c) => c.y)));
    expect(heatmapVerdict([...control, ...trained])).toEqual({ best: trained[1], untrained: control[0] });
    expect(heatmapVerdict(control).best).toBeNull();
  });
});

describe('layout helpers', () => {
  it('orders decoder blocks numerically, deepest first, before the middle and encoder blocks', () => {
    expect(['out_10', 'in_1', 'out_2', 'mid_1', 'out_1', 'mid_2', 'in_2'].sort(compareLayers)).toEqual(['out_1', 'out_2', 'out_10', 'mid_2', 'mid_1', 'in_2', 'in_1']);
  });

  it('measures text in 6-pixel advances of 5-pixel glyphs', () => {
    expect(textWidth('', 2)).toBe(0);
    expect(textWidth('t=5', 2)).toBe((3 * 6 - 1) * 2);
  });
});
