import { LeaderboardRepository, Prisma, type LeaderboardFilter, type PrismaClient } from '@ddae/db';
import { createTestDatabase, seedFinishedSweep, type TestDatabase } from '@ddae/testing';

/**
 * A leaderboard page must cost its rows, not the history: each read of a ranked table walks an
 * index in the ranking's order and stops after `limit + 1` entries (docs/results.md, "Why it holds
 * at 10,000,000 results"). Timings cannot show that here; the plans can. Every query a page runs is
 * EXPLAIN ANALYZEd first, and every scan of probe_results, leaderboard_runs and leaderboard_configs
 * must have read at most `limit + 1` rows (filtered-out rows count as read), every lookup one row
 * per page row. Sequential scans and hash or merge joins are switched off for the planner, as the
 * size of a real table would switch them off, so a query that cannot use an index's order has to
 * read its whole filter and sort it, and is caught (as `labels IS NULL` once was: not an equality to
 * the planner, it hid the index's order and every page sorted the whole filter).
 */

const RANKED = new Set(['probe_results', 'leaderboard_runs', 'leaderboard_configs']);
const LIMIT = 2;

interface Scan {
  relation: string;
  node: string;
  /** Rows the scan returned or filtered out, over all its loops. */
  rowsRead: number;
  /** 1 for a ranking's own scan; one per page row for a lookup inside a nested loop. */
  loops: number;
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Rows Removed by Filter'?: number;
  Plans?: PlanNode[];
}

function scansOf(node: PlanNode, into: Scan[]): Scan[] {
  if (node['Relation Name'] && RANKED.has(node['Relation Name'])) {
    const loops = node['Actual Loops'] ?? 1;
    into.push({ relation: node['Relation Name'], node: node['Node Type'], rowsRead: Math.round(((node['Actual Rows'] ?? 0) + (node['Rows Removed by Filter'] ?? 0)) * loops), loops });
  }
  for (const child of node.Plans ?? []) scansOf(child, into);
  return into;
}

/** The client with every `$queryRaw` explained (ANALYZE, planned as for a large table) before it runs; the scans land in `scans`. */
function explaining(prisma: PrismaClient, scans: Scan[]): PrismaClient {
  return new Proxy(prisma, {
    get(target, prop) {
      if (prop !== '$queryRaw') {
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      }
      return async (strings: readonly string[], ...values: unknown[]) => {
        const query = Prisma.sql(strings, ...values);
        const plans = await target.$transaction(async (tx) => {
          // A table this small is cheaper to read whole (or to hash); at a million rows it is not. Plan as there.
          for (const off of ['enable_seqscan', 'enable_hashjoin', 'enable_mergejoin']) await tx.$executeRawUnsafe(`SET LOCAL ${off} = off`);
          // The disabling costs would otherwise make every plan worth compiling (seconds of JIT).
          await tx.$executeRawUnsafe('SET LOCAL jit = off');
          return tx.$queryRawUnsafe<{ 'QUERY PLAN': { Plan: PlanNode }[] }[]>(`EXPLAIN (ANALYZE, FORMAT JSON) ${query.text}`, ...query.values);
        });
        scansOf(plans[0]['QUERY PLAN'][0].Plan, scans);
        return target.$queryRaw(query);
      };
    },
  });
}

describe('a leaderboard page reads its rows along an index, not the history (real Postgres, EXPLAIN ANALYZE)', () => {
  let db: TestDatabase;
  let sweepId: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    // 7 runs (6 seeds + the control) x 3 noise levels x 9 layers, at all labels and at 20: 378
    // results, 6 trained runs, 27 trained config cells per budget. A page of 2 that sorted its
    // filter would read 6 or more rows of any ranked table; one along an index reads at most 3.
    ({ sweepId } = await seedFinishedSweep(db.prisma, { name: 'plans', seeds: [0, 1, 2, 3, 4, 5], timesteps: [1, 4, 16], labels: [20] }));
    await db.prisma.$executeRawUnsafe('ANALYZE');
  }, 300_000);

  afterAll(async () => {
    await db.drop();
  });

  async function pageScans(filter: LeaderboardFilter, pages = 1): Promise<Scan[]> {
    let cursor: string | undefined;
    for (let i = 1; i < pages; i++) {
      const before = await new LeaderboardRepository(db.prisma).page({ ...filter, cursor, limit: LIMIT });
      cursor = before.nextCursor ?? undefined;
      if (!cursor) throw new Error(`page ${i} of ${JSON.stringify(filter)} has no next page`);
    }
    const scans: Scan[] = [];
    const page = await new LeaderboardRepository(explaining(db.prisma, scans)).page({ ...filter, cursor, limit: LIMIT });
    expect(page.rows).toHaveLength(LIMIT);
    return scans;
  }

  const views: [string, () => LeaderboardFilter, number][] = [];
  for (const per of ['cell', 'run', 'config'] as const) {
    views.push(
      [`per=${per}`, () => ({ per }), 1],
      [`per=${per}&dataset`, () => ({ per, dataset: 'fashion-mnist' }), 1],
      [`per=${per}&method`, () => ({ per, method: 'ddpm' }), 1],
      [`per=${per}&dataset&method`, () => ({ per, dataset: 'fashion-mnist', method: 'ddpm' }), 1],
      [`per=${per}&sweep`, () => ({ per, sweepId }), 1],
      [`per=${per}&labels=20`, () => ({ per, labels: 20 }), 1],
      [`per=${per}, page 3 by cursor`, () => ({ per }), 3],
    );
  }

  it.each(views)('%s reads at most limit + 1 rows of a ranked table, and one row per lookup', async (_name, filter, pages) => {
    const scans = await pageScans(filter(), pages);
    expect(scans.filter((s) => s.loops === 1).length).toBeGreaterThan(0);
    // A ranking's scan stops after limit + 1 entries; a lookup per page row (the result behind a
    // run's best, the same cell fine-tuned) reads by key: at most one row each time.
    const tooMany = scans.filter((s) => (s.loops === 1 ? s.rowsRead > LIMIT + 1 : s.rowsRead > s.loops));
    expect(tooMany).toEqual([]);
  });
});
