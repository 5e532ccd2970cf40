-- The leaderboard's ranking indexes lead with the label budget after untrained (an equality, `labels IS NULL` for all
-- included), so that a page at any budget stays an index range scan of `limit` rows whatever the other budgets hold.

-- DropIndex
DROP INDEX "leaderboard_configs_sweep_id_untrained_mean_n_model_name_la_idx";

-- DropIndex
DROP INDEX "leaderboard_configs_untrained_dataset_mean_n_model_name_lay_idx";

-- DropIndex
DROP INDEX "leaderboard_configs_untrained_dataset_method_mean_n_model_n_idx";

-- DropIndex
DROP INDEX "leaderboard_configs_untrained_mean_n_model_name_layer_noise_idx";

-- DropIndex
DROP INDEX "leaderboard_configs_untrained_method_mean_n_model_name_laye_idx";

-- DropIndex
DROP INDEX "leaderboard_runs_sweep_id_untrained_accuracy_created_at_res_idx";

-- DropIndex
DROP INDEX "leaderboard_runs_untrained_accuracy_created_at_result_id_idx";

-- DropIndex
DROP INDEX "leaderboard_runs_untrained_dataset_accuracy_created_at_resu_idx";

-- DropIndex
DROP INDEX "leaderboard_runs_untrained_dataset_method_accuracy_created__idx";

-- DropIndex
DROP INDEX "leaderboard_runs_untrained_method_accuracy_created_at_resul_idx";

-- DropIndex
DROP INDEX "probe_results_sweep_id_untrained_accuracy_created_at_id_idx";

-- DropIndex
DROP INDEX "probe_results_untrained_accuracy_created_at_id_idx";

-- DropIndex
DROP INDEX "probe_results_untrained_dataset_accuracy_created_at_id_idx";

-- DropIndex
DROP INDEX "probe_results_untrained_dataset_method_accuracy_created_at__idx";

-- DropIndex
DROP INDEX "probe_results_untrained_method_accuracy_created_at_id_idx";

-- CreateIndex
CREATE INDEX "leaderboard_configs_untrained_labels_mean_n_model_name_laye_idx" ON "leaderboard_configs"("untrained", "labels", "mean" DESC, "n" DESC, "model_name", "layer", "noise_level", "protocol_key", "sweep_id");

-- CreateIndex
CREATE INDEX "leaderboard_configs_untrained_labels_dataset_mean_n_model_n_idx" ON "leaderboard_configs"("untrained", "labels", "dataset", "mean" DESC, "n" DESC, "model_name", "layer", "noise_level", "protocol_key", "sweep_id");

-- CreateIndex
CREATE INDEX "leaderboard_configs_untrained_labels_method_mean_n_model_na_idx" ON "leaderboard_configs"("untrained", "labels", "method", "mean" DESC, "n" DESC, "model_name", "layer", "noise_level", "protocol_key", "sweep_id");

-- CreateIndex
CREATE INDEX "leaderboard_configs_untrained_labels_dataset_method_mean_n__idx" ON "leaderboard_configs"("untrained", "labels", "dataset", "method", "mean" DESC, "n" DESC, "model_name", "layer", "noise_level", "protocol_key", "sweep_id");

-- CreateIndex
CREATE INDEX "leaderboard_configs_sweep_id_untrained_labels_mean_n_model__idx" ON "leaderboard_configs"("sweep_id", "untrained", "labels", "mean" DESC, "n" DESC, "model_name", "layer", "noise_level", "protocol_key");

-- CreateIndex
CREATE INDEX "leaderboard_runs_untrained_labels_accuracy_created_at_resul_idx" ON "leaderboard_runs"("untrained", "labels", "accuracy" DESC, "created_at", "result_id");

-- CreateIndex
CREATE INDEX "leaderboard_runs_untrained_labels_dataset_accuracy_created__idx" ON "leaderboard_runs"("untrained", "labels", "dataset", "accuracy" DESC, "created_at", "result_id");

-- CreateIndex
CREATE INDEX "leaderboard_runs_untrained_labels_method_accuracy_created_a_idx" ON "leaderboard_runs"("untrained", "labels", "method", "accuracy" DESC, "created_at", "result_id");

-- CreateIndex
CREATE INDEX "leaderboard_runs_untrained_labels_dataset_method_accuracy_c_idx" ON "leaderboard_runs"("untrained", "labels", "dataset", "method", "accuracy" DESC, "created_at", "result_id");

-- CreateIndex
CREATE INDEX "leaderboard_runs_sweep_id_untrained_labels_accuracy_created_idx" ON "leaderboard_runs"("sweep_id", "untrained", "labels", "accuracy" DESC, "created_at", "result_id");

-- CreateIndex
CREATE INDEX "probe_results_untrained_labels_accuracy_created_at_id_idx" ON "probe_results"("untrained", "labels", "accuracy" DESC, "created_at", "id");

-- CreateIndex
CREATE INDEX "probe_results_untrained_labels_dataset_accuracy_created_at__idx" ON "probe_results"("untrained", "labels", "dataset", "accuracy" DESC, "created_at", "id");

-- CreateIndex
CREATE INDEX "probe_results_untrained_labels_method_accuracy_created_at_i_idx" ON "probe_results"("untrained", "labels", "method", "accuracy" DESC, "created_at", "id");

-- CreateIndex
CREATE INDEX "probe_results_untrained_labels_dataset_method_accuracy_crea_idx" ON "probe_results"("untrained", "labels", "dataset", "method", "accuracy" DESC, "created_at", "id");

-- CreateIndex
CREATE INDEX "probe_results_sweep_id_untrained_labels_accuracy_created_at_idx" ON "probe_results"("sweep_id", "untrained", "labels", "accuracy" DESC, "created_at", "id");
