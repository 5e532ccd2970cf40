-- A run's network is a UNet (unet) or a DiT (dit): exactly one of them (the planner sets one;
-- no CHECK constraint, which the schema engine's describer cannot read).
-- AlterTable
ALTER TABLE "runs" ADD COLUMN     "dit" JSONB,
ALTER COLUMN "unet" DROP NOT NULL;
