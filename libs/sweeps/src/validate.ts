import { parseDocument, YAMLError } from 'yaml';
import { SPEC_LIMITS, sweepSpecSchema, type SweepSpec } from '@ddae/contracts';
import { PlanError, planSweep, type SweepPlan } from './plan';

export interface SpecIssue {
  /** Dotted path of the bad field, e.g. `models.0.unet.groups`; empty for the document itself. */
  path: string;
  message: string;
}

export type SpecValidation = { ok: true; spec: SweepSpec; plan: SweepPlan } | { ok: false; issues: SpecIssue[] };

export function formatPath(path: readonly PropertyKey[]): string {
  return path.map((p) => String(p)).join('.');
}

interface ZodIssueLike {
  code: string;
  path: PropertyKey[];
  message: string;
  errors?: ZodIssueLike[][];
}

/**
 * A union's "Invalid input" says nothing useful: report the issues of the branch the input was
 * meant for (the one whose type matched), with full paths; else what every branch expected.
 */
function flattenIssue(issue: ZodIssueLike, prefix: PropertyKey[]): SpecIssue[] {
  const path = [...prefix, ...issue.path];
  if (issue.code !== 'invalid_union' || !issue.errors?.length) return [{ path: formatPath(path), message: issue.message }];
  // A branch that got as far as a field matched the input's shape; one that failed at the root did not.
  const matching = issue.errors.filter((branch) => branch.some((i) => i.path.length > 0));
  if (matching.length === 1) return matching[0].flatMap((i) => flattenIssue(i, path));
  const atRoot = issue.errors.flat().filter((i) => i.path.length === 0);
  const specific = atRoot.filter((i) => i.code !== 'invalid_type');
  const expected = (specific.length ? specific : atRoot).map((i) => i.message);
  return [{ path: formatPath(path), message: expected.length ? expected.join(', or ') : issue.message }];
}

/**
 * Parses a spec document written as YAML (a superset of JSON). The parser's warnings are refused like
 * its errors, with their line: an unknown tag (`steps: !int 5`) would otherwise turn the value into a
 * string behind the user's back, and the library would print the warning on the server's stderr.
 */
export function parseSpecText(text: string): { ok: true; value: unknown } | { ok: false; issues: SpecIssue[] } {
  const refuse = (error: Error): { ok: false; issues: SpecIssue[] } => {
    const where = error instanceof YAMLError && error.linePos ? ` (line ${error.linePos[0].line})` : '';
    return { ok: false, issues: [{ path: '', message: `not valid YAML or JSON${where}: ${error.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}` }] };
  };
  try {
    // logLevel 'error': nothing printed (warnings are refused below, from the document).
    const doc = parseDocument(text, { logLevel: 'error', prettyErrors: true });
    const problem = doc.errors[0] ?? doc.warnings[0];
    if (problem) return refuse(problem);
    return { ok: true, value: doc.toJS({ maxAliasCount: 100 }) };
  } catch (error) {
    return refuse(error as Error);
  }
}

/**
 * Validates a spec (already parsed from JSON or YAML) and plans it. Every problem is reported with
 * the path of its field; nothing here writes anything.
 */
export function validateSweepSpec(input: unknown): SpecValidation {
  const parsed = sweepSpecSchema.safeParse(input);
  if (!parsed.success) {
    return { ok: false, issues: parsed.error.issues.flatMap((i) => flattenIssue(i, [])) };
  }
  let plan: SweepPlan;
  try {
    plan = planSweep(parsed.data);
  } catch (error) {
    if (error instanceof PlanError) return { ok: false, issues: [{ path: formatPath(error.path), message: error.message }] };
    throw error;
  }
  if (plan.counts.probeTasks > SPEC_LIMITS.maxProbeTasks) {
    return {
      ok: false,
      issues: [{ path: 'probe', message: `${plan.counts.probeTasks} probe tasks (runs x noise levels) exceed the limit of ${SPEC_LIMITS.maxProbeTasks}: probe fewer noise levels, or split the sweep` }],
    };
  }
  if (plan.counts.probeCells > SPEC_LIMITS.maxProbeCells) {
    return {
      ok: false,
      issues: [{ path: 'probe', message: `${plan.counts.probeCells} probe cells exceed the limit of ${SPEC_LIMITS.maxProbeCells}` }],
    };
  }
  return { ok: true, spec: parsed.data, plan };
}
