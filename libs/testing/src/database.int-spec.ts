import { Client } from 'pg';
import { parseDatabaseUrl, withDatabase } from '@ddae/db';
import { createTestDatabase } from './database';

describe('createTestDatabase', () => {
  it('creates a migrated database quickly and drops it', async () => {
    const started = Date.now();
    const db = await createTestDatabase();
    const elapsed = Date.now() - started;
    try {
      expect(db.name).toMatch(/^ddae_test_[0-9a-f]{12}$/);
      expect(elapsed).toBeLessThan(2000);
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
});
