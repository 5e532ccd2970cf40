import { Client } from 'pg';
import { parseDatabaseUrl, withDatabase } from '@ddae/db';
import { createTestDatabase } from './database';

describe('createTestDatabase', () => {
  it('creates a migrated database and drops it', async () => {
    const db = await createTestDatabase();
    try {
      expect(db.name).toMatch(/^ddae_test_[0-9a-f]{12}$/);
      expect(await db.prisma.sweep.count()).toBe(0);
    } finally {
      await db.drop();
      await db.drop(); // idempotent
    }
    const admin = new Client(withDatabase(parseDatabaseUrl(db.url), 'postgres'));
    await admin.connect();
    const rows = (await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [db.name])).rows;
    await admin.end();
    expect(rows).toHaveLength(0);
  });

  it('truncate waits out a lock held by another session (its lock wait times out, it tries again) and empties the tables', async () => {
    const db = await createTestDatabase();
    const other = new Client(parseDatabaseUrl(db.url));
    await other.connect();
    try {
      await db.prisma.worker.create({ data: { id: 'w-lock', hostname: 'h', pid: 1, backend: 'cpu', device: 'cpu', state: 'idle' } });
      await other.query('BEGIN');
      await other.query("SELECT * FROM workers WHERE id = 'w-lock' FOR UPDATE");
      // Held past one lock_timeout (2 s): the first TRUNCATE gives up, a later one succeeds.
      const release = setTimeout(() => void other.query('COMMIT'), 2500);
      await db.truncate('workers');
      clearTimeout(release);
      expect(await db.prisma.worker.count()).toBe(0);
    } finally {
      await other.end();
      await db.drop();
    }
  });
});
