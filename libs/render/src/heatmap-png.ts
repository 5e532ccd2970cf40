import { PNG } from 'pngjs';

/** One (model, layer, noise level) cell of `GET /api/sweeps/:id/heatmap`. */
export interface HeatmapCell {
  modelName: string;
  /** A cell of the untrained-network control: drawn in its own grid, never outlined as the best. Default false. */
  untrained?: boolean;
  method: string;
  layer: string;
  noiseLevel: number;
  mean: number;
  std: number | null;
  min?: number;
  max?: number;
  n: number;
}

export interface HeatmapPngInput {
  /** First line, e.g. the sweep's name and data set. */
  title: string;
  /** Second line (optional), in grey. */
  subtitle?: string;
  cells: HeatmapCell[];
  /** The pixel baseline of the data set, shown in the legend (and on the colour bar when in range). */
  baseline?: { kind: string; accuracy: number } | null;
}

/** The trained models' best cell and the untrained network's best cell, by mean over seeds. */
export interface HeatmapVerdict {
  best: HeatmapCell | null;
  untrained: HeatmapCell | null;
}

/** Splits cells into trained and control ones and finds the best of each: a control is never the best. */
export function heatmapVerdict(cells: readonly HeatmapCell[]): HeatmapVerdict {
  const bestOf = (xs: readonly HeatmapCell[]) => xs.reduce<HeatmapCell | null>((a, c) => (a === null || c.mean > a.mean ? c : a), null);
  return { best: bestOf(cells.filter((c) => !c.untrained)), untrained: bestOf(cells.filter((c) => c.untrained === true)) };
}

const signed = (x: number): string => `${x >= 0 ? '+' : '-'}${pct(Math.abs(x), 2)}`;

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface RenderedHeatmap {
  png: Buffer;
  width: number;
  height: number;
  /** Where each cell was drawn, for tests and image maps. */
  cells: (Rect & { modelName: string; untrained: boolean; best: boolean; layer: string; noiseLevel: number; mean: number })[];
}

// ------------------------------------------------------------------------------------------------
// A 5x7 bitmap font ('#' = ink), with two extra rows for descenders. Unknown characters draw '?'.
const GLYPHS: Record<string, string> = {
  ' ': '..... ..... ..... ..... ..... ..... .....',
  '0': '.###. #...# #..## #.#.# ##..# #...# .###.',
  '1': '..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.',
  '2': '.###. #...# ....# ...#. ..#.. .#... #####',
  '3': '##### ...#. ..#.. ...#. ....# #...# .###.',
  '4': '...#. ..##. .#.#. #..#. ##### ...#. ...#.',
  '5': '##### #.... ####. ....# ....# #...# .###.',
  '6': '..##. .#... #.... ####. #...# #...# .###.',
  '7': '##### ....# ...#. ..#.. .#... .#... .#...',
  '8': '.###. #...# #...# .###. #...# #...# .###.',
  '9': '.###. #...# #...# .#### ....# ...#. .##..',
  A: '.###. #...# #...# ##### #...# #...# #...#',
  B: '####. #...# #...# ####. #...# #...# ####.',
  C: '.###. #...# #.... #.... #.... #...# .###.',
  D: '###.. #..#. #...# #...# #...# #..#. ###..',
  E: '##### #.... #.... ####. #.... #.... #####',
  F: '##### #.... #.... ####. #.... #.... #....',
  G: '.###. #...# #.... #.### #...# #...# .####',
  H: '#...# #...# #...# ##### #...# #...# #...#',
  I: '.###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.',
  J: '..### ...#. ...#. ...#. ...#. #..#. .##..',
  K: '#...# #..#. #.#.. ##... #.#.. #..#. #...#',
  L: '#.... #.... #.... #.... #.... #.... #####',
  M: '#...# ##.## #.#.# #.#.# #...# #...# #...#',
  N: '#...# #...# ##..# #.#.# #..## #...# #...#',
  O: '.###. #...# #...# #...# #...# #...# .###.',
  P: '####. #...# #...# ####. #.... #.... #....',
  Q: '.###. #...# #...# #...# #.#.# #..#. .##.#',
  R: '####. #...# #...# ####. #.#.. #..#. #...#',
  S: '.#### #.... #.... .###. ....# ....# ####.',
  T: '##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..',
  U: '#...# #...# #...# #...# #...# #...# .###.',
  V: '#...# #...# #...# #...# #...# .#.#. ..#..',
  W: '#...# #...# #...# #.#.# #.#.# #.#.# .#.#.',
  X: '#...# #...# .#.#. ..#.. .#.#. #...# #...#',
  Y: '#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..',
  Z: '##### ....# ...#. ..#.. .#... #.... #####',
  a: '..... ..... .###. ....# .#### #...# .####',
  b: '#.... #.... #.##. ##..# #...# #...# ####.',
  c: '..... ..... .###. #.... #.... #...# .###.',
  d: '....# ....# .##.# #..## #...# #...# .####',
  e: '..... ..... .###. #...# ##### #.... .###.',
  f: '..##. .#..# .#... ###.. .#... .#... .#...',
  g: '..... ..... .#### #...# #...# #...# .#### ....# .###.',
  h: '#.... #.... #.##. ##..# #...# #...# #...#',
  i: '..#.. ..... .##.. ..#.. ..#.. ..#.. .###.',
  j: '...#. ..... ..##. ...#. ...#. ...#. ...#. #..#. .##..',
  k: '#.... #.... #..#. #.#.. ##... #.#.. #..#.',
  l: '.##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.',
  m: '..... ..... ##.#. #.#.# #.#.# #.#.# #.#.#',
  n: '..... ..... #.##. ##..# #...# #...# #...#',
  o: '..... ..... .###. #...# #...# #...# .###.',
  p: '..... ..... ####. #...# #...# #...# ####. #.... #....',
  q: '..... ..... .#### #...# #...# #...# .#### ....# ....#',
  r: '..... ..... #.##. ##..# #.... #.... #....',
  s: '..... ..... .###. #.... .###. ....# ####.',
  t: '.#... .#... ###.. .#... .#... .#..# ..##.',
  u: '..... ..... #...# #...# #...# #..## .##.#',
  v: '..... ..... #...# #...# #...# .#.#. ..#..',
  w: '..... ..... #...# #...# #.#.# #.#.# .#.#.',
  x: '..... ..... #...# .#.#. ..#.. .#.#. #...#',
  y: '..... ..... #...# #...# #...# #...# .#### ....# .###.',
  z: '..... ..... ##### ...#. ..#.. .#... #####',
  '.': '..... ..... ..... ..... ..... .##.. .##..',
  ',': '..... ..... ..... ..... .##.. .##.. ..#.. .#...',
  ':': '..... .##.. .##.. ..... .##.. .##.. .....',
  '%': '##... ##..# ...#. ..#.. .#... #..## ...##',
  _: '..... ..... ..... ..... ..... ..... #####',
  '=': '..... ..... ##### ..... ##### ..... .....',
  '-': '..... ..... ..... ##### ..... ..... .....',
  '+': '..... ..#.. ..#.. ##### ..#.. ..#.. .....',
  '±': '..#.. ..#.. ##### ..#.. ..#.. ..... #####',
  '(': '...#. ..#.. .#... .#... .#... ..#.. ...#.',
  ')': '.#... ..#.. ...#. ...#. ...#. ..#.. .#...',
  '[': '.###. .#... .#... .#... .#... .#... .###.',
  ']': '.###. ...#. ...#. ...#. ...#. ...#. .###.',
  '/': '..... ....# ...#. ..#.. .#... #.... .....',
  '#': '.#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.',
  '<': '...#. ..#.. .#... #.... .#... ..#.. ...#.',
  '>': '.#... ..#.. ...#. ....# ...#. ..#.. .#...',
  "'": '..#.. ..#.. .#... ..... ..... ..... .....',
  '"': '.#.#. .#.#. ..... ..... ..... ..... .....',
  '&': '.##.. #..#. #.#.. .#... #.#.# #..#. .##.#',
  '*': '..... ..#.. #.#.# .###. #.#.# ..#.. .....',
  '?': '.###. #...# ....# ...#. ..#.. ..... ..#..',
  '·': '..... ..... ..... ..#.. ..... ..... .....',
  '×': '..... #...# .#.#. ..#.. .#.#. #...# .....',
  'σ': '..... ..... .#### #..#. #...# #...# .###.',
};
const FONT = new Map(Object.entries(GLYPHS).map(([ch, rows]) => [ch, rows.split(' ').map((r) => [...r].map((c) => c === '#'))]));
const UNKNOWN = FONT.get('?') as boolean[][];
const GLYPH_W = 5;
const GLYPH_ADVANCE = 6;
/** Rows above the baseline; descenders use two more. */
export const GLYPH_H = 7;

/** Width in pixels of `text` at `scale`. */
export function textWidth(text: string, scale: number): number {
  const n = [...text].length;
  return n === 0 ? 0 : (n * GLYPH_ADVANCE - (GLYPH_ADVANCE - GLYPH_W)) * scale;
}

// ------------------------------------------------------------------------------------------------
export type RGB = readonly [number, number, number];

/** Viridis, sampled: the worst cell dark purple, the best yellow (the web page uses the same stops). */
const VIRIDIS: RGB[] = [[68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142], [31, 158, 137], [53, 183, 121], [110, 206, 88], [181, 222, 43], [253, 231, 37]];

export function colourAt(t: number): RGB {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const [a, b] = [VIRIDIS[i], VIRIDIS[i + 1]];
  return [0, 1, 2].map((j) => Math.round(a[j] + (b[j] - a[j]) * f)) as unknown as RGB;
}

const textOn = (c: RGB): RGB => (0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2] > 140 ? INK : WHITE);
const WHITE: RGB = [255, 255, 255];
export const INK: RGB = [29, 35, 48];
export const GREY: RGB = [102, 112, 133];
const MISSING: RGB = [238, 241, 245];
const BASELINE: RGB = [208, 69, 58];

/** Decoder blocks first (out_1..out_N in numeric order, deepest first), then middle and encoder blocks, deepest first. */
export function compareLayers(a: string, b: string): number {
  const key = (name: string): [number, number] => {
    const m = /^([a-z]+)_(\d+)$/.exec(name);
    const group = m ? ({ out: 0, mid: 1, down: 2, in: 3 } as Record<string, number>)[m[1]] : undefined;
    if (!m || group === undefined) return [9, 0];
    return [group, m[1] === 'out' ? Number(m[2]) : -Number(m[2])];
  };
  const [ka, kb] = [key(a), key(b)];
  return ka[0] - kb[0] || ka[1] - kb[1] || (a < b ? -1 : a > b ? 1 : 0);
}

export const noiseLabel = (method: string, level: number): string => `${method === 'edm' ? 'σ' : 't'}=${Number(level.toPrecision(6))}`;
const pct = (x: number, digits: number): string => (100 * x).toFixed(digits);

/** An RGB PNG canvas with filled rectangles and the 5x7 bitmap font. */
export class Canvas {
  readonly png: PNG;
  constructor(readonly width: number, readonly height: number) {
    this.png = new PNG({ width, height, colorType: 2 });
    this.png.data.fill(255);
  }

  rect(x: number, y: number, w: number, h: number, c: RGB): void {
    const x0 = Math.max(0, Math.round(x)), y0 = Math.max(0, Math.round(y));
    const x1 = Math.min(this.width, Math.round(x + w)), y1 = Math.min(this.height, Math.round(y + h));
    for (let yy = y0; yy < y1; yy++) {
      for (let xx = x0; xx < x1; xx++) {
        const i = (yy * this.width + xx) * 4;
        this.png.data[i] = c[0];
        this.png.data[i + 1] = c[1];
        this.png.data[i + 2] = c[2];
        this.png.data[i + 3] = 255;
      }
    }
  }

  outline(r: Rect, t: number, c: RGB): void {
    this.rect(r.x, r.y, r.w, t, c);
    this.rect(r.x, r.y + r.h - t, r.w, t, c);
    this.rect(r.x, r.y, t, r.h, c);
    this.rect(r.x + r.w - t, r.y, t, r.h, c);
  }

  /** Draws text with its top-left at (x, y). */
  text(x: number, y: number, text: string, c: RGB, scale: number): void {
    let cx = x;
    for (const ch of text) {
      const glyph = FONT.get(ch) ?? UNKNOWN;
      glyph.forEach((row, gy) => row.forEach((on, gx) => on && this.rect(cx + gx * scale, y + gy * scale, scale, scale, c)));
      cx += GLYPH_ADVANCE * scale;
    }
  }
}

// ------------------------------------------------------------------------------------------------
const S = 2; // glyph scale: 5x7 glyphs drawn 10x14
const LINE = (GLYPH_H + 4) * S;
const MARGIN = 20;
const GAP = 2;
const BLOCK_GAP = 24;

interface Grid {
  modelName: string;
  untrained: boolean;
  method: string;
  layers: string[];
  levels: number[];
  cells: Map<string, HeatmapCell>;
  seeds: number;
}

function groupGrids(cells: HeatmapCell[]): Grid[] {
  const grids = new Map<string, Grid>();
  for (const c of cells) {
    const key = `${c.modelName}\u0000${c.method}\u0000${c.untrained === true}`;
    let g = grids.get(key);
    if (!g) grids.set(key, (g = { modelName: c.modelName, untrained: c.untrained === true, method: c.method, layers: [], levels: [], cells: new Map(), seeds: 0 }));
    if (!g.layers.includes(c.layer)) g.layers.push(c.layer);
    if (!g.levels.includes(c.noiseLevel)) g.levels.push(c.noiseLevel);
    g.cells.set(`${c.layer}@${c.noiseLevel}`, c);
    g.seeds = Math.max(g.seeds, c.n);
  }
  for (const g of grids.values()) {
    g.layers.sort(compareLayers);
    g.levels.sort((a, b) => a - b);
  }
  // Trained grids first, then the controls.
  return [...grids.values()].sort((a, b) => Number(a.untrained) - Number(b.untrained));
}

/**
 * Renders a sweep's layer x noise heatmaps to a PNG: one grid per model (rows out_1..out_N, deepest
 * first; columns noise levels ascending), the trained models' grids first and labelled as such, the
 * untrained-network control's after them, labelled as a control. Cells are coloured on one scale from
 * the worst to the best mean accuracy shown and labelled with the mean in % (and ± std over seeds).
 * Only the trained models' best cell is outlined; the legend compares it with each baseline.
 */
export function renderHeatmapPng(input: HeatmapPngInput): RenderedHeatmap {
  const grids = groupGrids(input.cells);
  const means = input.cells.map((c) => c.mean);
  const lo = means.length ? Math.min(...means) : 0;
  const hi = means.length ? Math.max(...means) : 1;
  const scaleOf = (x: number): number => (hi > lo ? (x - lo) / (hi - lo) : 1);
  const anySpread = input.cells.some((c) => c.n > 1 && c.std !== null);
  const verdict = heatmapVerdict(input.cells);
  const best = verdict.best;

  // Sizes: every cell fits its longest label; row labels fit the longest layer name.
  const valueLabels = input.cells.flatMap((c) => [`${pct(c.mean, 1)}%`, c.n > 1 && c.std !== null ? `±${pct(c.std, 1)}` : '']);
  const noiseLabels = grids.flatMap((g) => g.levels.map((l) => noiseLabel(g.method, l)));
  const cellW = Math.max(76, ...[...valueLabels, ...noiseLabels].map((t) => textWidth(t, S) + 12));
  const cellH = anySpread ? 2 * GLYPH_H * S + 18 : GLYPH_H * S + 18;
  const rowLabelW = Math.max(textWidth('layer', S), ...grids.flatMap((g) => g.layers.map((l) => textWidth(l, S)))) + 12;

  const headerH = LINE + (input.subtitle ? LINE : 0) + 8;
  const gridSize = (g: Grid) => ({
    w: rowLabelW + g.levels.length * (cellW + GAP),
    h: LINE /* model name */ + LINE /* noise labels */ + g.layers.length * (cellH + GAP),
  });
  const seedsOf = (c: HeatmapCell) => `${c.n} ${c.n === 1 ? 'seed' : 'seeds'}`;
  const bestText = best
    ? `best trained cell: ${best.modelName} ${best.layer} ${noiseLabel(best.method, best.noiseLevel)} ${pct(best.mean, 2)}% (mean of ${seedsOf(best)})`
    : 'no trained model probed yet';
  const pixels = input.baseline ?? null;
  const baselineLines: { text: string; marker: boolean }[] = [
    {
      text: pixels ? `${pixels.kind} baseline ${pct(pixels.accuracy, 2)}%${best ? `: best trained cell ${signed(best.mean - pixels.accuracy)} points` : ''}` : 'no pixel baseline yet',
      marker: pixels !== null,
    },
  ];
  if (verdict.untrained) {
    const u = verdict.untrained;
    baselineLines.push({
      text: `untrained network ${u.layer} ${noiseLabel(u.method, u.noiseLevel)} ${pct(u.mean, 2)}%${best ? `: best trained cell ${signed(best.mean - u.mean)} points` : ''}`,
      marker: false,
    });
  }
  const legendText = { worst: `worst ${pct(lo, 1)}%`, best: `best ${pct(hi, 1)}%` };
  const barW = 240;
  const legendW = textWidth(legendText.worst, S) + 10 + barW + 10 + textWidth(legendText.best, S);
  const legendH = (2 + baselineLines.length) * LINE + 12;
  const gridTitle = (g: Grid) =>
    g.untrained ? `${g.modelName} - untrained network, a control (not ranked)` : `${g.modelName} - trained (${g.method}, ${g.seeds} ${g.seeds === 1 ? 'seed' : 'seeds'})`;
  const contentW = Math.max(
    textWidth(input.title, S),
    input.subtitle ? textWidth(input.subtitle, S) : 0,
    legendW,
    textWidth(bestText, S) + 10,
    ...baselineLines.map((l) => textWidth(l.text, S) + 10),
    ...grids.map((g) => Math.max(gridSize(g).w, textWidth(gridTitle(g), S))),
    textWidth('no probe results yet', S),
  );
  const gridsH = grids.length ? grids.reduce((h, g) => h + gridSize(g).h, 0) + BLOCK_GAP * (grids.length - 1) : LINE;
  const width = MARGIN * 2 + contentW;
  const height = MARGIN * 2 + headerH + legendH + BLOCK_GAP + gridsH;
  const canvas = new Canvas(width, height);

  // Title, subtitle.
  let y = MARGIN;
  canvas.text(MARGIN, y, input.title, INK, S);
  y += LINE;
  if (input.subtitle) {
    canvas.text(MARGIN, y, input.subtitle, GREY, S);
    y += LINE;
  }
  y += 8;

  // Legend: worst [colour bar with the pixel baseline's marker] best; the best trained cell; each baseline.
  let x = MARGIN;
  canvas.text(x, y + 2, legendText.worst, INK, S);
  x += textWidth(legendText.worst, S) + 10;
  for (let i = 0; i < barW; i++) canvas.rect(x + i, y, 1, GLYPH_H * S + 4, colourAt(i / (barW - 1)));
  const b = pixels?.accuracy;
  if (b !== undefined && hi > lo && b >= lo && b <= hi) canvas.rect(x + Math.round(scaleOf(b) * (barW - 1)) - 1, y - 4, 3, GLYPH_H * S + 12, BASELINE);
  x += barW + 10;
  canvas.text(x, y + 2, legendText.best, INK, S);
  y += LINE + 4;
  if (best) canvas.outline({ x: MARGIN, y: y - 2, w: 6, h: GLYPH_H * S + 4 }, 2, INK);
  canvas.text(MARGIN + (best ? 12 : 0), y, bestText, best ? INK : GREY, S);
  y += LINE;
  for (const line of baselineLines) {
    if (line.marker) canvas.rect(MARGIN, y, 3, GLYPH_H * S, BASELINE);
    canvas.text(MARGIN + 12, y, line.text, line.marker || line.text.startsWith('untrained') ? INK : GREY, S);
    y += LINE;
  }
  y += 8 + BLOCK_GAP;

  const drawn: RenderedHeatmap['cells'] = [];
  if (!grids.length) canvas.text(MARGIN, y, 'no probe results yet', GREY, S);
  for (const g of grids) {
    canvas.text(MARGIN, y, gridTitle(g), g.untrained ? GREY : INK, S);
    y += LINE;
    canvas.text(MARGIN + rowLabelW - 12 - textWidth('layer', S), y, 'layer', GREY, S);
    g.levels.forEach((level, j) => {
      const label = noiseLabel(g.method, level);
      canvas.text(MARGIN + rowLabelW + j * (cellW + GAP) + Math.floor((cellW - textWidth(label, S)) / 2), y, label, INK, S);
    });
    y += LINE;
    for (const layer of g.layers) {
      canvas.text(MARGIN + rowLabelW - 12 - textWidth(layer, S), y + Math.floor((cellH - GLYPH_H * S) / 2), layer, INK, S);
      g.levels.forEach((level, j) => {
        const r: Rect = { x: MARGIN + rowLabelW + j * (cellW + GAP), y, w: cellW, h: cellH };
        const c = g.cells.get(`${layer}@${level}`);
        if (!c) {
          canvas.rect(r.x, r.y, r.w, r.h, MISSING);
          canvas.text(r.x + Math.floor((cellW - textWidth('-', S)) / 2), r.y + Math.floor((cellH - GLYPH_H * S) / 2), '-', GREY, S);
          return;
        }
        const fill = colourAt(scaleOf(c.mean));
        canvas.rect(r.x, r.y, r.w, r.h, fill);
        if (c === best) canvas.outline(r, 3, INK);
        const lines = [`${pct(c.mean, 1)}%`, ...(c.n > 1 && c.std !== null ? [`±${pct(c.std, 1)}`] : [])];
        const textH = lines.length * GLYPH_H * S + (lines.length - 1) * 6;
        lines.forEach((line, k) => {
          canvas.text(r.x + Math.floor((cellW - textWidth(line, S)) / 2), r.y + Math.floor((cellH - textH) / 2) + k * (GLYPH_H * S + 6), line, textOn(fill), S);
        });
        drawn.push({ ...r, modelName: g.modelName, untrained: g.untrained, best: c === best, layer, noiseLevel: level, mean: c.mean });
      });
      y += cellH + GAP;
    }
    y += BLOCK_GAP;
  }
  return { png: PNG.sync.write(canvas.png, { colorType: 2 }), width, height, cells: drawn };
}
