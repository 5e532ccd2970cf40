-- The device that computed a result (the WebGPU adapter, else the worker's device), null on rows written before.
-- AlterTable
ALTER TABLE "runs" ADD COLUMN "device" TEXT;

-- AlterTable
ALTER TABLE "probe_results" ADD COLUMN "device" TEXT;

-- AlterTable
ALTER TABLE "baselines" ADD COLUMN "device" TEXT;
