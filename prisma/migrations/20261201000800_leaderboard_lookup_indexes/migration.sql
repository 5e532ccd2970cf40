-- Lookups the leaderboard makes per row of a config page: the same cell fine-tuned (by sweep, model,
-- control flag, probe kind, layer and noise level) and an imported model's provenance (a sweep's runs
-- of one model). Without them each row read every config row, or every run, of its sweep.

-- CreateIndex
CREATE INDEX "leaderboard_configs_sweep_id_model_name_untrained_probe_pro_idx" ON "leaderboard_configs"("sweep_id", "model_name", "untrained", "probe_protocol", "layer", "noise_level");

-- CreateIndex
CREATE INDEX "runs_sweep_id_model_name_untrained_idx" ON "runs"("sweep_id", "model_name", "untrained");
