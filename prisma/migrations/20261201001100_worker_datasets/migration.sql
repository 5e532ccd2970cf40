-- The data sets a worker can read, reported with each heartbeat: a job needing one a worker lacks
-- is handed to a live worker that has it instead of failing.
-- AlterTable
ALTER TABLE "workers" ADD COLUMN     "datasets" TEXT[] DEFAULT ARRAY[]::TEXT[];
