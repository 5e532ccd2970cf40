import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { apiEnvSchema } from '@ddae/config';
import { workerListSchema } from '@ddae/contracts';
import { WorkerRepository } from '@ddae/db';
import { createTestDatabase, deleteQueueKeys, uniqueQueuePrefix, type TestDatabase } from '@ddae/testing';
import { createApiApp } from '../bootstrap';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const GPU = 'GPU 0 "NVIDIA H200" (nvidia hopper, vulkan; NVIDIA 570.124.06; max buffer 4.0 GiB, max binding 2048 MiB, 8 storage buffers/shader)';

describe('GET /api/workers (real Postgres)', () => {
  let db: TestDatabase;
  let app: INestApplication;
  let prefix: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = uniqueQueuePrefix('workers');
    const env = apiEnvSchema.parse({ DATABASE_URL: db.url, REDIS_URL, QUEUE_PREFIX: prefix, RECONCILE_MS: '0', LOG_LEVEL: 'error', API_AUTH: 'off' });
    app = await createApiApp(env);
    await app.init();
  });

  afterAll(async () => {
    await app?.close();
    await deleteQueueKeys(REDIS_URL, prefix);
    await db?.drop();
  });

  it("serves each worker's GPU memory at the end of its last job beside its adapter; null before one and off a GPU", async () => {
    const workers = new WorkerRepository(db.prisma);
    const beat = { hostname: 'h', pid: 1, state: 'idle' as const, currentJobId: null };
    await workers.beat({ ...beat, id: 'w-gpu', backend: 'webgpu', device: GPU, gpuMemory: { allocatedBytes: 3 * 2 ** 30, usedBytes: 2 ** 30 } });
    await workers.beat({ ...beat, id: 'w-cpu', backend: 'native', device: 'cpu' });
    await workers.beat({ ...beat, id: 'w-partial', backend: 'webgpu', device: GPU, gpuMemory: { allocatedBytes: 5 * 2 ** 30, usedBytes: null } });
    const body = workerListSchema.parse((await request(app.getHttpServer()).get('/api/workers').expect(200)).body);
    expect(Object.fromEntries(body.workers.map((w) => [w.id, [w.device, w.gpuMemory]]))).toEqual({
      'w-gpu': [GPU, { allocatedBytes: 3 * 2 ** 30, usedBytes: 2 ** 30 }],
      'w-cpu': ['cpu', null],
      'w-partial': [GPU, { allocatedBytes: 5 * 2 ** 30, usedBytes: null }],
    });
    // The next beat replaces the figures (the worker's last job's).
    await workers.beat({ ...beat, id: 'w-gpu', backend: 'webgpu', device: GPU, gpuMemory: { allocatedBytes: 2 ** 31, usedBytes: 2 ** 20 } });
    const again = workerListSchema.parse((await request(app.getHttpServer()).get('/api/workers').expect(200)).body);
    expect(again.workers.find((w) => w.id === 'w-gpu')?.gpuMemory).toEqual({ allocatedBytes: 2 ** 31, usedBytes: 2 ** 20 });
  });
});
