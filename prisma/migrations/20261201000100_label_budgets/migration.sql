-- Label budgets (probe.labels): a probe task lists its budgets, and every result, baseline and summary row
-- names its budget: a count of labelled training images in total, class-balanced, or NULL for all of
-- the protocol's trainSize (what every row written before was). A result's and a baseline's budget is
-- also in its protocol_key (a `labels=N` part, none for all), so their unique keys hold no NULL. The summary
-- tables key on the budget with NULLS NOT DISTINCT (one `all` row per key), behind a surrogate id
-- (Prisma's unique criterion must have only required fields).

-- AlterTable
ALTER TABLE "probe_tasks" ADD COLUMN "labels" JSONB;

-- AlterTable
ALTER TABLE "probe_results" ADD COLUMN "labels" INTEGER;

-- AlterTable
ALTER TABLE "baselines" ADD COLUMN "labels" INTEGER;

-- AlterTable
ALTER TABLE "leaderboard_configs" ADD COLUMN "labels" INTEGER;

-- AlterTable
ALTER TABLE "leaderboard_runs" DROP CONSTRAINT "leaderboard_runs_pkey",
ADD COLUMN "id" UUID NOT NULL DEFAULT gen_random_uuid(),
ADD COLUMN "labels" INTEGER,
ADD CONSTRAINT "leaderboard_runs_pkey" PRIMARY KEY ("id");

-- AlterTable
ALTER TABLE "heatmap_cells" DROP CONSTRAINT "heatmap_cells_pkey",
ADD COLUMN "id" UUID NOT NULL DEFAULT gen_random_uuid(),
ADD COLUMN "labels" INTEGER,
ADD CONSTRAINT "heatmap_cells_pkey" PRIMARY KEY ("id");

-- CreateIndex (NULLS NOT DISTINCT: the budget `all` is NULL, and two `all` rows of one key conflict)
CREATE UNIQUE INDEX "leaderboard_runs_run_id_labels_key" ON "leaderboard_runs"("run_id", "labels") NULLS NOT DISTINCT;

-- CreateIndex
CREATE UNIQUE INDEX "heatmap_cells_sweep_id_untrained_model_name_noise_level_lay_key" ON "heatmap_cells"("sweep_id", "untrained", "model_name", "noise_level", "layer", "method", "labels") NULLS NOT DISTINCT;
