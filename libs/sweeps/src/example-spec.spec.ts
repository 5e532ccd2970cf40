import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseSpecText, validateSweepSpec } from './validate';

const root = path.resolve(__dirname, '../../..');
const example = readFileSync(path.join(root, 'examples/fashion-mnist.yaml'), 'utf8');

/** The yaml block that follows "The whole example:" in the README's "The sweep spec" section. */
function readmeExample(): string {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const section = readme.indexOf('## The sweep spec');
  expect(section).toBeGreaterThan(-1);
  const m = /The whole example[^\n]*\n+```yaml\n([\s\S]*?)```/.exec(readme.slice(section));
  if (!m) throw new Error('README: no ```yaml block after "The whole example" in "The sweep spec"');
  return m[1];
}

describe('the demo spec (examples/fashion-mnist.yaml)', () => {
  it('is exactly the example the README shows', () => {
    expect(readmeExample()).toBe(example);
  });

  it('validates and plans: two seeds to spread over, both baselines, 28x28 unpadded', () => {
    const text = parseSpecText(example);
    if (!text.ok) throw new Error(JSON.stringify(text.issues));
    const r = validateSweepSpec(text.value);
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    expect(r.spec.pretrain.seeds.length).toBeGreaterThanOrEqual(2);
    expect(r.spec.baselines).toEqual(expect.arrayContaining(['pixels', 'untrained']));
    expect(r.plan.runs.filter((run) => !run.untrained).every((run) => run.hyper.imageSize === 28)).toBe(true);
  });
});
