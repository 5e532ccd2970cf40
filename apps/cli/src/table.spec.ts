import { pct, table } from './table';

describe('table', () => {
  it('aligns text left and numbers right, with a rule under the header', () => {
    expect(table(['name', 'n'], [['a', 1], ['long name', 100]]).split('\n')).toEqual([
      'name         n',
      '---------  ---',
      'a            1',
      'long name  100',
    ]);
  });

  it('shows missing values as "-" and accuracies as percentages', () => {
    expect(table(['x'], [[null]])).toContain('-');
    expect(pct(0.84231)).toBe('84.23');
    expect(pct(null)).toBe('-');
  });
});
