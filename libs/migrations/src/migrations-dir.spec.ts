import { defaultMigrationsDir, MIGRATION_LOCK_CONTENT, readMigrationLock, readMigrations, scriptMatchesChecksum, sha256Hex } from './migrations-dir';

describe('the committed migrations', () => {
  it('are in Prisma layout with a standard lock file', () => {
    const dir = defaultMigrationsDir();
    expect(dir).toMatch(/prisma\/migrations$/);
    const migrations = readMigrations(dir);
    expect(migrations.length).toBeGreaterThan(0);
    for (const m of migrations) {
      expect(m.name).toMatch(/^\d{14}_[A-Za-z0-9_]+$/);
      expect(m.checksum).toBe(sha256Hex(m.script));
    }
    expect(readMigrationLock(dir)).toBe(MIGRATION_LOCK_CONTENT);
  });

  it('match checksums across line-ending changes only', () => {
    const checksum = sha256Hex('a;\nb;\n');
    expect(scriptMatchesChecksum('a;\r\nb;\r\n', checksum)).toBe(true);
    expect(scriptMatchesChecksum('a;\nb;\nc;\n', checksum)).toBe(false);
  });
});
