import { PNG } from 'pngjs';
import { niceTicks, renderLineChartPng } from './line-chart-png';

describe('renderLineChartPng', () => {
  it('draws each panel over its data range with round ticks, and a valid PNG', () => {
    const chart = renderLineChartPng({
      title: 'demo - fashion-mnist',
      subtitle: 'trained runs against step',
      panels: [
        { title: 'training loss', xLabel: 'optimiser step', yLabel: 'loss', series: [{ name: 'a-s0', points: [{ x: 50, y: 0.2 }, { x: 100, y: 0.08 }] }, { name: 'a-s1', points: [{ x: 50, y: 0.21 }, { x: 100, y: 0.07 }] }] },
        { title: 'probe accuracy', xLabel: 'optimiser step', yLabel: 'test accuracy %', series: [] },
      ],
    });
    const png = PNG.sync.read(chart.png);
    expect([png.width, png.height]).toEqual([chart.width, chart.height]);
    expect(chart.panels).toHaveLength(2);
    expect(chart.panels[0]).toMatchObject({ xMin: 0, xMax: 100, points: 4 });
    expect(chart.panels[0].yMin).toBeLessThan(0.07);
    expect(chart.panels[0].yMax).toBeGreaterThan(0.21);
    expect(chart.panels[1].points).toBe(0);
    // Some pixel of the first series' colour inside the first plot.
    const p = chart.panels[0];
    let coloured = 0;
    for (let y = p.y; y < p.y + p.h; y++) for (let x = p.x; x < p.x + p.w; x++) {
      const i = (y * png.width + x) * 4;
      if (png.data[i] === 31 && png.data[i + 1] === 119 && png.data[i + 2] === 180) coloured++;
    }
    expect(coloured).toBeGreaterThan(50);
  });

  it('ticks at 1, 2 or 5 times a power of ten', () => {
    expect(niceTicks(0, 600)).toEqual([0, 200, 400, 600]);
    expect(niceTicks(0.061, 0.212)).toEqual([0.1, 0.15, 0.2]);
    expect(niceTicks(3, 3)).toEqual([3]);
  });
});
