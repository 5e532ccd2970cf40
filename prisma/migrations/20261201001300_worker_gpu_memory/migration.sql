-- On a GPU: the memory tfjs's buffer pool held at the end of the worker's last job (allocated, in use),
-- reported with each heartbeat beside the adapter. Null before its first GPU job.
-- AlterTable
ALTER TABLE "workers" ADD COLUMN "gpu_memory" JSONB;
