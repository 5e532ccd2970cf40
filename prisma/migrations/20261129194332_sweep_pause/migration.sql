-- AlterTable
ALTER TABLE "sweeps" ADD COLUMN     "paused_at" TIMESTAMPTZ(3);
