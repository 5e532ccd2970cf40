import { Client } from 'pg';
import { DEFAULT_DATABASE_URL } from '@ddae/db';
import { createTestDatabase } from './database';
import { startPostgresServer, type PostgresServer } from './postgres-server';

/** The start time of the machine's own server: a test of our own server must not change it. */
async function sharedServerStart(): Promise<string> {
  const client = new Client({ connectionString: process.env['DATABASE_URL'] ?? DEFAULT_DATABASE_URL });
  await client.connect();
  try {
    return String((await client.query('SELECT pg_postmaster_start_time() AS t')).rows[0].t);
  } finally {
    await client.end();
  }
}

describe('a PostgreSQL server of the test\'s own', () => {
  let server: PostgresServer | undefined;
  afterEach(async () => {
    await server?.dispose();
    server = undefined;
  });

  it('initdb into a temporary folder, its own port: stopped (fast or killed) and started again with its data; the shared server untouched', async () => {
    const shared = await sharedServerStart();
    const own = (server = await startPostgresServer());
    expect(own.port).not.toBe(5432);
    expect(own.url).toBe(`postgresql://postgres@127.0.0.1:${own.port}/postgres`);
    const db = await createTestDatabase({ serverUrl: own.url });
    try {
      // Migrated on our server, not the shared one.
      const port = await db.prisma.$queryRawUnsafe<{ port: string }[]>("SELECT current_setting('port') AS port");
      expect(Number(port[0].port)).toBe(own.port);
      await db.prisma.$executeRawUnsafe('CREATE TABLE kept (v int)');
      await db.prisma.$executeRawUnsafe('INSERT INTO kept VALUES (42)');

      for (const signal of ['SIGINT', 'SIGKILL'] as const) {
        await own.stop(signal);
        expect(own.running).toBe(false);
        await expect(db.prisma.$queryRawUnsafe('SELECT 1')).rejects.toThrow();
        await own.start();
        expect(own.running).toBe(true);
        // A committed row survives a fast shutdown and a crash of the postmaster.
        const rows = await db.prisma.$queryRawUnsafe<{ v: number }[]>('SELECT v FROM kept');
        expect(rows).toEqual([{ v: 42 }]);
      }
    } finally {
      await db.drop();
    }
    expect(await sharedServerStart()).toBe(shared);
  });
});
