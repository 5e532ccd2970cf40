import { decoderBlockNames, tappableBlockNames, unetLayout } from './unet-layout';

describe('unetLayout', () => {
  const base = { imageSize: 32, imageChannels: 1, baseChannels: 32, channelMults: [1, 2, 2], blocksPerLevel: 2, attentionResolutions: [16] };

  it('names encoder, downsampling, middle and decoder blocks like the reference code', () => {
    expect(tappableBlockNames(base)).toEqual([
      'in_1', 'in_2', 'down_1', 'in_3', 'in_4', 'down_2', 'in_5', 'in_6',
      'mid_1', 'mid_2',
      'out_1', 'out_2', 'out_3', 'out_4', 'out_5', 'out_6', 'out_7', 'out_8', 'out_9',
    ]);
  });

  it('gives each decoder block its resolution and channels, deepest first', () => {
    const decoder = unetLayout(base).filter((b) => b.kind === 'decoder');
    expect(decoder.map((b) => [b.name, b.resolution, b.channels, b.attention])).toEqual([
      ['out_1', 8, 64, false], ['out_2', 8, 64, false], ['out_3', 8, 64, false],
      ['out_4', 16, 64, true], ['out_5', 16, 64, true], ['out_6', 16, 64, true],
      ['out_7', 32, 32, false], ['out_8', 32, 32, false], ['out_9', 32, 32, false],
    ]);
  });

  it('has levels x (blocks + 1) decoder blocks', () => {
    expect(decoderBlockNames({ ...base, channelMults: [1, 2], blocksPerLevel: 1 })).toEqual(['out_1', 'out_2', 'out_3', 'out_4']);
    expect(decoderBlockNames({ ...base, channelMults: [1, 2, 2, 2] })).toHaveLength(12);
  });
});
