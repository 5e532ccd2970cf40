-- AlterTable
ALTER TABLE "probe_results" ADD COLUMN     "noise_protocol" TEXT NOT NULL DEFAULT 'fixed',
ADD COLUMN     "pooling" TEXT NOT NULL DEFAULT 'gap',
ADD COLUMN     "probe_protocol" TEXT NOT NULL DEFAULT 'fast';

-- AlterTable
ALTER TABLE "runs" ADD COLUMN     "stopped_early_at" INTEGER;

-- CreateTable
CREATE TABLE "progress_probes" (
    "id" UUID NOT NULL,
    "run_id" UUID NOT NULL,
    "sweep_id" UUID NOT NULL,
    "step" INTEGER NOT NULL,
    "layer" TEXT NOT NULL,
    "noise_level" DOUBLE PRECISION NOT NULL,
    "accuracy" DOUBLE PRECISION NOT NULL,
    "feature_dim" INTEGER NOT NULL,
    "protocol_key" TEXT NOT NULL,
    "protocol" JSONB NOT NULL,
    "backend" TEXT NOT NULL,
    "worker_id" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "progress_probes_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "progress_probes_sweep_id_idx" ON "progress_probes"("sweep_id");

-- CreateIndex
CREATE UNIQUE INDEX "progress_probes_run_id_step_layer_noise_level_protocol_key_key" ON "progress_probes"("run_id", "step", "layer", "noise_level", "protocol_key");

-- AddForeignKey
ALTER TABLE "progress_probes" ADD CONSTRAINT "progress_probes_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "runs"("id") ON DELETE CASCADE ON UPDATE CASCADE;


-- Backfill: every result so far was a linear probe on features extracted once with fixed noise,
-- i.e. the `fast` protocol. Its protocol gains `probe: fast` and its key `probe=fast` after the
-- noise part, so old and new rows of the same protocol share one natural key. (chr(59) is the
-- semicolon: the migration runner splits statements on it.)
UPDATE "probe_results" SET
  "protocol" = "protocol" || '{"probe":"fast"}'::jsonb,
  "protocol_key" = regexp_replace("protocol_key", '(noise=[a-z]+:[0-9]+)', '\1' || chr(59) || 'probe=fast'),
  "pooling" = COALESCE("protocol"->>'pooling', 'gap'),
  "noise_protocol" = COALESCE("protocol"->>'noise', 'fixed')
WHERE ("protocol"->>'probe') IS NULL;
UPDATE "probe_tasks" SET
  "protocol" = "protocol" || '{"probe":"fast"}'::jsonb,
  "protocol_key" = regexp_replace("protocol_key", '(noise=[a-z]+:[0-9]+)', '\1' || chr(59) || 'probe=fast')
WHERE ("protocol"->>'probe') IS NULL;
UPDATE "baselines" SET
  "protocol" = "protocol" || '{"probe":"fast"}'::jsonb,
  "protocol_key" = regexp_replace("protocol_key", '(noise=[a-z]+:[0-9]+)', '\1' || chr(59) || 'probe=fast')
WHERE ("protocol"->>'probe') IS NULL;
