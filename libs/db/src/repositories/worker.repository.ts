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

  /**
   * Hands back the rows a previous process with this worker id left RUNNING (it was killed and
   * restarted under the same id, as a StatefulSet or a unit with WORKER_ID does). A process that is
   * only starting runs nothing, and its heartbeats would otherwise keep the reconciler off them.
   * @returns how many rows went back to QUEUED.
   */
  async releaseHeld(workerId: string): Promise<number> {
    const counts = await Promise.all(
      (['runs', 'probe_tasks', 'baselines'] as const).map((table) =>
        this.prisma.$executeRawUnsafe(`UPDATE ${table} SET status = 'QUEUED', error = 'its worker restarted', updated_at = now() WHERE status = 'RUNNING' AND worker_id = $1`, workerId),
      ),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Workers heard from within `staleMs`. */
  live(staleMs: number): Promise<Worker[]> {
    return this.prisma.worker.findMany({
      where: { lastHeartbeatAt: { gte: new Date(Date.now() - staleMs) }, state: { not: 'stopped' } },
      orderBy: { startedAt: 'asc' },
    });
  }
}
