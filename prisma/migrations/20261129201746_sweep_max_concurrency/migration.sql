-- AlterTable
ALTER TABLE "sweeps" ADD COLUMN     "max_concurrency" INTEGER;
