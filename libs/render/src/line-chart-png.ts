import { PNG } from 'pngjs';
import { Canvas, GLYPH_H, GREY, INK, textWidth, type RGB } from './heatmap-png';

/** One line of a panel: its points in drawing order (sorted by x when drawn). */
export interface ChartSeries {
  name: string;
  points: { x: number; y: number }[];
}

/** One chart: its series share the axes. */
export interface ChartPanel {
  title: string;
  xLabel: string;
  yLabel: string;
  series: ChartSeries[];
  /** Formats a y tick (default: up to 3 significant digits). */
  yFormat?: (y: number) => string;
  /** Shown instead of an empty chart when no series has a point. */
  empty?: string;
}

export interface LineChartInput {
  title: string;
  subtitle?: string;
  /** Drawn one below the other, all the same width. */
  panels: ChartPanel[];
}

export interface RenderedChart {
  png: Buffer;
  width: number;
  height: number;
  /** Where each panel's plot area is, and the data range it maps (for tests). */
  panels: { x: number; y: number; w: number; h: number; xMin: number; xMax: number; yMin: number; yMax: number; points: number }[];
}

/** Tableau-like line colours, distinct on white. */
const COLOURS: RGB[] = [[31, 119, 180], [214, 39, 40], [44, 160, 44], [148, 103, 189], [255, 127, 14], [23, 190, 207], [140, 86, 75], [227, 119, 194]];
const AXIS: RGB = [180, 186, 196];
const S = 2;
const LINE = (GLYPH_H + 4) * S;
const MARGIN = 20;
const PLOT_W = 560;
const PLOT_H = 240;

/** About `count` round tick values covering [lo, hi] (1, 2, 5 times a power of ten apart). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi <= lo) return [lo];
  const raw = (hi - lo) / Math.max(1, count - 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

const defaultFormat = (y: number): string => String(Number(y.toPrecision(3)));

/**
 * Renders line charts to a PNG with the heatmap's bitmap font: per panel a title, axes with round
 * ticks and axis titles, one coloured line (with dots) per series and a legend of the series.
 */
export function renderLineChartPng(input: LineChartInput): RenderedChart {
  const yAxisW = (p: ChartPanel) => {
    const { ticks } = yRange(p);
    return Math.max(...ticks.map((t) => textWidth((p.yFormat ?? defaultFormat)(t), S)), 0) + 10;
  };
  const labelW = Math.max(...input.panels.map(yAxisW), 40);
  const legendRows = (p: ChartPanel) => Math.max(1, p.series.length);
  const panelH = (p: ChartPanel) => LINE /* title */ + LINE /* y label */ + PLOT_H + LINE /* x ticks */ + LINE /* x label */ + legendRows(p) * LINE + 16;
  const contentW = Math.max(
    labelW + PLOT_W + 10,
    textWidth(input.title, S),
    input.subtitle ? textWidth(input.subtitle, S) : 0,
    ...input.panels.flatMap((p) => [textWidth(p.title, S), ...p.series.map((s) => 30 + textWidth(s.name, S))]),
  );
  const headerH = LINE + (input.subtitle ? LINE : 0) + 8;
  const width = MARGIN * 2 + contentW;
  const height = MARGIN * 2 + headerH + input.panels.reduce((h, p) => h + panelH(p) + 12, 0);
  const canvas = new Canvas(width, height);
  let y = MARGIN;
  canvas.text(MARGIN, y, input.title, INK, S);
  y += LINE;
  if (input.subtitle) {
    canvas.text(MARGIN, y, input.subtitle, GREY, S);
    y += LINE;
  }
  y += 8;
  const drawn: RenderedChart['panels'] = [];
  for (const panel of input.panels) {
    canvas.text(MARGIN, y, panel.title, INK, S);
    y += LINE;
    canvas.text(MARGIN, y, panel.yLabel, GREY, S);
    y += LINE;
    const plot = { x: MARGIN + labelW, y, w: PLOT_W, h: PLOT_H };
    const { lo: yMin, hi: yMax, ticks: yTicks } = yRange(panel);
    const xs = panel.series.flatMap((s) => s.points.map((p) => p.x));
    const xMin = xs.length ? Math.min(0, ...xs) : 0;
    const xMax = xs.length ? Math.max(...xs) : 1;
    const px = (x: number) => plot.x + (xMax > xMin ? ((x - xMin) / (xMax - xMin)) * (plot.w - 1) : plot.w / 2);
    const py = (v: number) => plot.y + plot.h - 1 - (yMax > yMin ? ((v - yMin) / (yMax - yMin)) * (plot.h - 1) : plot.h / 2);
    // Grid lines and y ticks.
    const fmt = panel.yFormat ?? defaultFormat;
    for (const t of yTicks) {
      const ty = Math.round(py(t));
      canvas.rect(plot.x, ty, plot.w, 1, [236, 239, 243]);
      const label = fmt(t);
      canvas.text(plot.x - 8 - textWidth(label, S), ty - Math.floor((GLYPH_H * S) / 2), label, INK, S);
    }
    canvas.rect(plot.x, plot.y, 1, plot.h, AXIS);
    canvas.rect(plot.x, plot.y + plot.h - 1, plot.w, 1, AXIS);
    for (const t of niceTicks(xMin, xMax)) {
      const tx = Math.round(px(t));
      canvas.rect(tx, plot.y + plot.h, 1, 4, AXIS);
      const label = String(t);
      canvas.text(Math.min(plot.x + plot.w - textWidth(label, S), Math.max(plot.x, tx - Math.floor(textWidth(label, S) / 2))), plot.y + plot.h + 6, label, INK, S);
    }
    let count = 0;
    if (!xs.length) {
      const msg = panel.empty ?? 'no points';
      canvas.text(plot.x + Math.floor((plot.w - textWidth(msg, S)) / 2), plot.y + Math.floor(plot.h / 2), msg, GREY, S);
    }
    panel.series.forEach((series, k) => {
      const colour = COLOURS[k % COLOURS.length];
      const pts = [...series.points].filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
      for (let i = 1; i < pts.length; i++) line(canvas, px(pts[i - 1].x), py(pts[i - 1].y), px(pts[i].x), py(pts[i].y), colour);
      for (const p of pts) canvas.rect(px(p.x) - 2, py(p.y) - 2, 5, 5, colour);
      count += pts.length;
    });
    drawn.push({ ...plot, xMin, xMax, yMin, yMax, points: count });
    y += plot.h + LINE;
    canvas.text(plot.x + plot.w - textWidth(panel.xLabel, S), y, panel.xLabel, GREY, S);
    y += LINE;
    panel.series.forEach((series, k) => {
      canvas.rect(MARGIN, y + GLYPH_H - 2, 20, 4, COLOURS[k % COLOURS.length]);
      canvas.text(MARGIN + 30, y, series.name, INK, S);
      y += LINE;
    });
    if (!panel.series.length) y += LINE;
    y += 16 + 12;
  }
  return { png: PNG.sync.write(canvas.png, { colorType: 2 }), width, height, panels: drawn };
}

/** The y range of a panel: its data padded by 5 % (a flat series gets +-1 % of its value), and round ticks inside it. */
function yRange(panel: ChartPanel): { lo: number; hi: number; ticks: number[] } {
  const ys = panel.series.flatMap((s) => s.points.map((p) => p.y)).filter(Number.isFinite);
  if (!ys.length) return { lo: 0, hi: 1, ticks: niceTicks(0, 1) };
  let lo = Math.min(...ys);
  let hi = Math.max(...ys);
  const pad = hi > lo ? (hi - lo) * 0.05 : Math.abs(hi) * 0.01 || 0.01;
  lo -= pad;
  hi += pad;
  return { lo, hi, ticks: niceTicks(lo, hi) };
}

/** A 2-pixel line from (x0, y0) to (x1, y1). */
function line(canvas: Canvas, x0: number, y0: number, x1: number, y1: number, c: RGB): void {
  const n = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0))));
  for (let i = 0; i <= n; i++) canvas.rect(x0 + ((x1 - x0) * i) / n - 1, y0 + ((y1 - y0) * i) / n - 1, 2, 2, c);
}
