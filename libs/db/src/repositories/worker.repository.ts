import { Prisma, type PrismaClient, type Worker } from '../generated/client';
import { requeueHeld } from './requeue';

export interface WorkerBeat {
  id: string;
  hostname: string;
  pid: number;
  backend: string;
  device: string;
  /** unhealthy: it met an environment fault during a job, handed the job back and takes no more. */
  state: 'starting' | 'idle' | 'busy' | 'stopping' | 'stopped' | 'unhealthy';
  currentJobId: string | null;
  /** Why it is unhealthy (null otherwise): names the fault and where it happened. */
  unhealthyReason?: string | null;
  /**
   * The data sets (names of DATASET_NAMES) it can read now: another worker hands it the jobs that
   * need one of them rather than failing them. Default: none.
   */
  datasets?: string[];
  /** On a GPU: what tfjs's buffer pool held at the end of its last job. Default null (none yet). */
  gpuMemory?: WorkerGpuMemory | null;
}

/** GPU memory held by tfjs's buffer pool, in bytes (null: the backend did not report it). */
export interface WorkerGpuMemory {
  allocatedBytes: number | null;
  usedBytes: number | null;
}

export class WorkerRepository {
  constructor(private readonly prisma: PrismaClient) {}

  async beat(beat: WorkerBeat): Promise<void> {
    const now = new Date();
    const w = { ...beat, unhealthyReason: beat.unhealthyReason ?? null, datasets: beat.datasets ?? [], gpuMemory: beat.gpuMemory ? { ...beat.gpuMemory } : Prisma.DbNull };
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
   * Each row gets its `*.requeued` event.
   * @returns how many rows went back to QUEUED.
   */
  async releaseHeld(workerId: string): Promise<number> {
    return requeueHeld(this.prisma, Prisma.sql`worker_id = ${workerId}`, 'its worker restarted');
  }

  /**
   * Hands back the rows of workers not heard from since `cutoff` (or stopped), and rows RUNNING
   * without a worker: the reconciler's recovery from a worker that died.
   * @returns how many rows went back to QUEUED.
   */
  async releaseStale(cutoff: Date): Promise<number> {
    return requeueHeld(
      this.prisma,
      Prisma.sql`(worker_id IS NULL OR worker_id NOT IN (SELECT id FROM workers WHERE last_heartbeat_at >= ${cutoff} AND state <> 'stopped'))`,
      'its worker stopped heartbeating',
    );
  }

  /** Workers heard from within `staleMs`. */
  live(staleMs: number): Promise<Worker[]> {
    return this.prisma.worker.findMany({
      where: { lastHeartbeatAt: { gte: new Date(Date.now() - staleMs) }, state: { not: 'stopped' } },
      orderBy: { startedAt: 'asc' },
    });
  }
}
