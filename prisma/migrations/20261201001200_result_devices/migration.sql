-- The device that computed the results that lacked it (probing during pretraining, sample grids, FID/KID):
-- the WebGPU adapter, else the worker's device, as on runs, probe results and baselines: null on rows written before.
-- AlterTable
ALTER TABLE "progress_probes" ADD COLUMN "device" TEXT;

-- AlterTable
ALTER TABLE "run_samples" ADD COLUMN "device" TEXT;

-- AlterTable
ALTER TABLE "run_generation_quality" ADD COLUMN "device" TEXT;
