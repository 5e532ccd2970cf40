-- AlterTable
ALTER TABLE "probe_results" ADD COLUMN     "untrained" BOOLEAN NOT NULL DEFAULT false;

-- AlterTable
ALTER TABLE "runs" ADD COLUMN     "untrained" BOOLEAN NOT NULL DEFAULT false;
