import * as tf from '@tensorflow/tfjs';
import { i32 } from './native-kernel';

type Shape4 = [number, number, number, number];

/** The addon's convolution dims: [n, h, w, cin, kh, kw, cout, sh, sw, padTop, padLeft, ho, wo]. */
export function convDims(info: tf.backend_util.Conv2DInfo): Int32Array {
  return i32([
    info.batchSize,
    info.inHeight,
    info.inWidth,
    info.inChannels,
    info.filterHeight,
    info.filterWidth,
    info.outChannels,
    info.strideHeight,
    info.strideWidth,
    info.padInfo.top,
    info.padInfo.left,
    info.outHeight,
    info.outWidth,
  ]);
}

/** The geometry of an NHWC, undilated convolution, or undefined for what the addon does not cover. */
export function nhwcConv(
  xShape: number[],
  filterShape: number[],
  strides: number | [number, number],
  dilations: number | [number, number],
  pad: tf.Conv2DAttrs['pad'],
  dimRoundingMode: tf.Conv2DAttrs['dimRoundingMode'],
  dataFormat: 'NHWC' | 'NCHW',
): tf.backend_util.Conv2DInfo | undefined {
  const info = tf.backend_util.computeConv2DInfo(xShape as Shape4, filterShape as Shape4, strides, dilations, pad, dimRoundingMode, false, tf.backend_util.convertConv2DDataFormat(dataFormat));
  return info.dataFormat === 'channelsLast' && info.dilationHeight === 1 && info.dilationWidth === 1 ? info : undefined;
}
