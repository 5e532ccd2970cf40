import { PrismaClient, Prisma, SweepStatus, TaskStatus } from './generated/client';
import { createPrismaClient } from './client';
import { formatDatabaseUrl, parseDatabaseUrl } from './database-url';

describe('parseDatabaseUrl', () => {
  it('gives discrete fields, decoding credentials', () => {
    expect(parseDatabaseUrl('postgresql://postgres@127.0.0.1:5432/ddae')).toEqual({
      host: '127.0.0.1', port: 5432, user: 'postgres', database: 'ddae',
    });
    expect(parseDatabaseUrl('postgres://u%40x:p%3Aw@db.local/app?schema=public')).toEqual({
      host: 'db.local', port: 5432, user: 'u@x', password: 'p:w', database: 'app',
    });
    expect(formatDatabaseUrl(parseDatabaseUrl('postgresql://u:p@h:1/d'))).toBe('postgresql://u:p@h:1/d');
  });

  it('rejects what is not a postgres URL with a database', () => {
    expect(() => parseDatabaseUrl('mysql://h/d')).toThrow(/postgresql/);
    expect(() => parseDatabaseUrl('postgresql://h:5432')).toThrow(/no database/);
    expect(() => parseDatabaseUrl('nonsense')).toThrow(/Invalid DATABASE_URL/);
  });
});

describe('the generated client', () => {
  it('loads under jest and exports enums, the Prisma namespace and the client', async () => {
    expect(SweepStatus.QUEUED).toBe('QUEUED');
    expect(Object.values(TaskStatus)).toContain('CANCELLED');
    expect(typeof Prisma.sql).toBe('function');
    const prisma = createPrismaClient('postgresql://postgres@127.0.0.1:5432/unused');
    expect(typeof PrismaClient).toBe('function');
    expect(typeof prisma.probeResult.upsert).toBe('function');
    await prisma.$disconnect();
  });
});
