import { PNG } from 'pngjs';
import { imageGridPng } from './image-grid';

function pixel(png: PNG, x: number, y: number): number[] {
  const i = (y * png.width + x) * 4;
  return [png.data[i], png.data[i + 1], png.data[i + 2]];
}

describe('imageGridPng', () => {
  it('lays out greyscale images in a grid, mapping [-1, 1] to 0..255 and clipping outside it', () => {
    // 5 images of 2x2, values: image k is filled with -1 + k / 2 (k = 4 is 1), one pixel out of range.
    const n = 5;
    const imgs = new Float32Array(n * 4);
    for (let k = 0; k < n; k++) imgs.fill(-1 + k / 2, k * 4, (k + 1) * 4);
    imgs[3] = -7;
    imgs[19] = 9;
    const g = imageGridPng(imgs, n, 2, 1, { pad: 1, scale: 3, background: 100 });
    expect([g.cols, g.rows]).toEqual([3, 2]);
    const png = PNG.sync.read(g.png);
    expect([png.width, png.height]).toEqual([g.width, g.height]);
    expect(g.width).toBe(3 * 6 + 4);
    expect(g.height).toBe(2 * 6 + 3);
    // Top-left pixel of image k sits at (1 + col * 7, 1 + row * 7).
    const at = (k: number, dx = 0, dy = 0) => pixel(png, 1 + (k % 3) * 7 + dx, 1 + Math.floor(k / 3) * 7 + dy);
    expect(at(0)).toEqual([0, 0, 0]);
    expect(at(1)).toEqual([64, 64, 64]);
    expect(at(2)).toEqual([128, 128, 128]);
    expect(at(4, 5, 5)).toEqual([255, 255, 255]);
    // The clipped pixels: image 0's last pixel (bottom-right 3x3 block) and image 4's.
    expect(at(0, 5, 5)).toEqual([0, 0, 0]);
    // Padding and the empty sixth cell keep the background.
    expect(pixel(png, 0, 0)).toEqual([100, 100, 100]);
    expect(pixel(png, 1 + 2 * 7 + 2, 1 + 7 + 2)).toEqual([100, 100, 100]);
  });

  it('keeps the colours of RGB images', () => {
    const img = new Float32Array([1, -1, -1, -1, 1, -1, -1, -1, 1, 1, 1, 1]); // 2x2: red, green, blue, white
    const png = PNG.sync.read(imageGridPng(img, 1, 2, 3, { pad: 0 }).png);
    expect([png.width, png.height]).toEqual([2, 2]);
    expect(pixel(png, 0, 0)).toEqual([255, 0, 0]);
    expect(pixel(png, 1, 0)).toEqual([0, 255, 0]);
    expect(pixel(png, 0, 1)).toEqual([0, 0, 255]);
    expect(pixel(png, 1, 1)).toEqual([255, 255, 255]);
  });

  it('refuses inconsistent sizes', () => {
    expect(() => imageGridPng(new Float32Array(7), 2, 2, 1)).toThrow(/expected 2 x 2 x 2 x 1/);
    expect(() => imageGridPng(new Float32Array(8), 2, 2, 2)).toThrow(/1 or 3 channels/);
  });
});

describe('imageGridPng crop', () => {
  it('keeps the central crop x crop pixels of each image', () => {
    // One 4x4 image whose pixel (x, y) is -1 on the border and 1 inside: crop 2 keeps the inside.
    const img = new Float32Array(16).fill(-1);
    for (const [x, y] of [[1, 1], [2, 1], [1, 2], [2, 2]]) img[y * 4 + x] = 1;
    const png = PNG.sync.read(imageGridPng(img, 1, 4, 1, { pad: 0, crop: 2 }).png);
    expect([png.width, png.height]).toEqual([2, 2]);
    for (const [x, y] of [[0, 0], [1, 0], [0, 1], [1, 1]]) expect(pixel(png, x, y)).toEqual([255, 255, 255]);
    expect(() => imageGridPng(img, 1, 4, 1, { crop: 5 })).toThrow(/crop must be an integer in 1..4/);
  });
});
