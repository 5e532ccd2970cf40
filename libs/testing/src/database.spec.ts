import { createTestDatabase } from './database';

describe('createTestDatabase (no services)', () => {
  it('fails fast and clearly when the server is unreachable', async () => {
    await expect(createTestDatabase({ serverUrl: 'postgresql://postgres@127.0.0.1:1/ddae' })).rejects.toThrow(/ECONNREFUSED|connect/);
  });

  it('rejects a URL that is not PostgreSQL', async () => {
    await expect(createTestDatabase({ serverUrl: 'mysql://root@127.0.0.1/x' })).rejects.toThrow(/postgresql/);
  });
});
