-- DropIndex
DROP INDEX "probe_results_accuracy_idx";

-- DropIndex
DROP INDEX "probe_results_dataset_accuracy_idx";

-- DropIndex
DROP INDEX "probe_results_method_accuracy_idx";

-- DropIndex
DROP INDEX "probe_results_sweep_id_accuracy_idx";

-- DropIndex
DROP INDEX "sweeps_created_at_idx";

-- CreateTable
CREATE TABLE "leaderboard_runs" (
    "run_id" UUID NOT NULL,
    "result_id" UUID NOT NULL,
    "sweep_id" UUID NOT NULL,
    "dataset" TEXT NOT NULL,
    "method" TEXT NOT NULL,
    "untrained" BOOLEAN NOT NULL,
    "accuracy" DOUBLE PRECISION NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "leaderboard_runs_pkey" PRIMARY KEY ("run_id")
);

-- CreateTable
CREATE TABLE "leaderboard_configs" (
    "sweep_id" UUID NOT NULL,
    "model_name" TEXT NOT NULL,
    "untrained" BOOLEAN NOT NULL,
    "protocol_key" TEXT NOT NULL,
    "noise_level" DOUBLE PRECISION NOT NULL,
    "layer" TEXT NOT NULL,
    "method" TEXT NOT NULL,
    "dataset" TEXT NOT NULL,
    "noise_protocol" TEXT NOT NULL,
    "probe_protocol" TEXT NOT NULL,
    "pooling" TEXT NOT NULL,
    "mean" DOUBLE PRECISION NOT NULL,
    "std" DOUBLE PRECISION,
    "min" DOUBLE PRECISION NOT NULL,
    "max" DOUBLE PRECISION NOT NULL,
    "n" INTEGER NOT NULL,
    "seeds" INTEGER[],
    "parameters" INTEGER,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "leaderboard_configs_pkey" PRIMARY KEY ("sweep_id","model_name","untrained","protocol_key","noise_level","layer")
);

-- CreateTable
CREATE TABLE "heatmap_cells" (
    "sweep_id" UUID NOT NULL,
    "model_name" TEXT NOT NULL,
    "untrained" BOOLEAN NOT NULL,
    "noise_level" DOUBLE PRECISION NOT NULL,
    "layer" TEXT NOT NULL,
    "method" TEXT NOT NULL,
    "mean" DOUBLE PRECISION NOT NULL,
    "std" DOUBLE PRECISION,
    "min" DOUBLE PRECISION NOT NULL,
    "max" DOUBLE PRECISION NOT NULL,
    "n" INTEGER NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "heatmap_cells_pkey" PRIMARY KEY ("sweep_id","untrained","model_name","noise_level","layer","method")
);

-- CreateIndex
CREATE INDEX "leaderboard_runs_untrained_accuracy_created_at_result_id_idx" ON "leaderboard_runs"("untrained", "accuracy" DESC, "created_at", "result_id");

-- CreateIndex
CREATE INDEX "leaderboard_runs_untrained_dataset_accuracy_created_at_resu_idx" ON "leaderboard_runs"("untrained", "dataset", "accuracy" DESC, "created_at", "result_id");

-- CreateIndex
CREATE INDEX "leaderboard_runs_untrained_method_accuracy_created_at_resul_idx" ON "leaderboard_runs"("untrained", "method", "accuracy" DESC, "created_at", "result_id");

-- CreateIndex
CREATE INDEX "leaderboard_runs_untrained_dataset_method_accuracy_created__idx" ON "leaderboard_runs"("untrained", "dataset", "method", "accuracy" DESC, "created_at", "result_id");

-- CreateIndex
CREATE INDEX "leaderboard_runs_sweep_id_untrained_accuracy_created_at_res_idx" ON "leaderboard_runs"("sweep_id", "untrained", "accuracy" DESC, "created_at", "result_id");

-- CreateIndex
CREATE INDEX "leaderboard_configs_untrained_mean_n_model_name_layer_noise_idx" ON "leaderboard_configs"("untrained", "mean" DESC, "n" DESC, "model_name", "layer", "noise_level", "protocol_key", "sweep_id");

-- CreateIndex
CREATE INDEX "leaderboard_configs_untrained_dataset_mean_n_model_name_lay_idx" ON "leaderboard_configs"("untrained", "dataset", "mean" DESC, "n" DESC, "model_name", "layer", "noise_level", "protocol_key", "sweep_id");

-- CreateIndex
CREATE INDEX "leaderboard_configs_untrained_method_mean_n_model_name_laye_idx" ON "leaderboard_configs"("untrained", "method", "mean" DESC, "n" DESC, "model_name", "layer", "noise_level", "protocol_key", "sweep_id");

-- CreateIndex
CREATE INDEX "leaderboard_configs_untrained_dataset_method_mean_n_model_n_idx" ON "leaderboard_configs"("untrained", "dataset", "method", "mean" DESC, "n" DESC, "model_name", "layer", "noise_level", "protocol_key", "sweep_id");

-- CreateIndex
CREATE INDEX "leaderboard_configs_sweep_id_untrained_mean_n_model_name_la_idx" ON "leaderboard_configs"("sweep_id", "untrained", "mean" DESC, "n" DESC, "model_name", "layer", "noise_level", "protocol_key");

-- CreateIndex
CREATE INDEX "probe_results_untrained_accuracy_created_at_id_idx" ON "probe_results"("untrained", "accuracy" DESC, "created_at", "id");

-- CreateIndex
CREATE INDEX "probe_results_untrained_dataset_accuracy_created_at_id_idx" ON "probe_results"("untrained", "dataset", "accuracy" DESC, "created_at", "id");

-- CreateIndex
CREATE INDEX "probe_results_untrained_method_accuracy_created_at_id_idx" ON "probe_results"("untrained", "method", "accuracy" DESC, "created_at", "id");

-- CreateIndex
CREATE INDEX "probe_results_untrained_dataset_method_accuracy_created_at__idx" ON "probe_results"("untrained", "dataset", "method", "accuracy" DESC, "created_at", "id");

-- CreateIndex
CREATE INDEX "probe_results_sweep_id_untrained_accuracy_created_at_id_idx" ON "probe_results"("sweep_id", "untrained", "accuracy" DESC, "created_at", "id");

-- CreateIndex
CREATE INDEX "probe_results_run_id_accuracy_created_at_id_idx" ON "probe_results"("run_id", "accuracy" DESC, "created_at", "id");

-- CreateIndex
CREATE INDEX "probe_results_run_id_noise_level_protocol_key_idx" ON "probe_results"("run_id", "noise_level", "protocol_key");

-- CreateIndex
CREATE INDEX "probe_tasks_sweep_id_status_idx" ON "probe_tasks"("sweep_id", "status");

-- CreateIndex
CREATE INDEX "runs_sweep_id_status_idx" ON "runs"("sweep_id", "status");

-- CreateIndex
CREATE INDEX "sweeps_created_at_id_idx" ON "sweeps"("created_at" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "sweeps_status_created_at_id_idx" ON "sweeps"("status", "created_at" DESC, "id" DESC);

-- AddForeignKey
ALTER TABLE "leaderboard_runs" ADD CONSTRAINT "leaderboard_runs_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "runs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "leaderboard_configs" ADD CONSTRAINT "leaderboard_configs_sweep_id_fkey" FOREIGN KEY ("sweep_id") REFERENCES "sweeps"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "heatmap_cells" ADD CONSTRAINT "heatmap_cells_sweep_id_fkey" FOREIGN KEY ("sweep_id") REFERENCES "sweeps"("id") ON DELETE CASCADE ON UPDATE CASCADE;
