-- AlterTable
ALTER TABLE "sweeps" ADD COLUMN     "priority" INTEGER NOT NULL DEFAULT 5;
