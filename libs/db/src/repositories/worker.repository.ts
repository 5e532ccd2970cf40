import type { PrismaClient, Worker } from '../generated/client';

export interface WorkerBeat {
  id: string;
  hostname: string;
  pid: number;
  backend: string;
  device: string;
  state: 'starting' | 'idle' | 'busy' | 'stopping' | 'stopped';
  currentJobId: string | null;
}

export class WorkerRepository {
  constructor(private readonly prisma: PrismaClient) {}

  async beat(w: WorkerBeat): Promise<void> {
    const now = new Date();
    await this.prisma.worker.upsert({
      where: { id: w.id },
      create: { ...w, startedAt: now, lastHeartbeatAt: now },
      update: { ...w, lastHeartbeatAt: now },
    });
  }

  /** Workers heard from within `staleMs`. */
  live(staleMs: number): Promise<Worker[]> {
    return this.prisma.worker.findMany({
      where: { lastHeartbeatAt: { gte: new Date(Date.now() - staleMs) }, state: { not: 'stopped' } },
      orderBy: { startedAt: 'asc' },
    });
  }
}
