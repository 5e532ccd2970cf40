-- Backfill of the leaderboard's summary rows from every probe result (the same statements as
-- rebuildSummaries in libs/db/src/repositories/summary.ts, whose test runs this file).

INSERT INTO leaderboard_runs AS b (run_id, result_id, sweep_id, dataset, method, untrained, accuracy, created_at)
SELECT DISTINCT ON (pr.run_id) pr.run_id, pr.id, pr.sweep_id, pr.dataset, pr.method, pr.untrained, pr.accuracy, pr.created_at
FROM probe_results pr JOIN runs r ON r.id = pr.run_id
WHERE true
ORDER BY pr.run_id, pr.accuracy DESC, pr.created_at ASC, pr.id ASC
ON CONFLICT (run_id) DO UPDATE SET result_id = excluded.result_id, sweep_id = excluded.sweep_id, dataset = excluded.dataset,
  method = excluded.method, untrained = excluded.untrained, accuracy = excluded.accuracy, created_at = excluded.created_at, updated_at = now()
WHERE (b.result_id, b.sweep_id, b.dataset, b.method, b.untrained, b.accuracy, b.created_at)
  IS DISTINCT FROM (excluded.result_id, excluded.sweep_id, excluded.dataset, excluded.method, excluded.untrained, excluded.accuracy, excluded.created_at);

INSERT INTO leaderboard_configs AS c (sweep_id, model_name, untrained, protocol_key, noise_level, layer, method, dataset,
  noise_protocol, probe_protocol, pooling, mean, std, min, max, n, seeds, parameters)
SELECT pr.sweep_id, r.model_name, pr.untrained, pr.protocol_key, pr.noise_level, pr.layer, pr.method, pr.dataset,
       pr.noise_protocol, pr.probe_protocol, pr.pooling,
       avg(pr.accuracy ORDER BY pr.accuracy), stddev_samp(pr.accuracy ORDER BY pr.accuracy), min(pr.accuracy), max(pr.accuracy), count(*),
       array_agg(r.seed ORDER BY r.seed), max(r.parameters)
FROM probe_results pr JOIN runs r ON r.id = pr.run_id
WHERE true
GROUP BY pr.sweep_id, r.model_name, pr.untrained, pr.protocol_key, pr.noise_level, pr.layer, pr.method, pr.dataset,
         pr.noise_protocol, pr.probe_protocol, pr.pooling
ON CONFLICT (sweep_id, model_name, untrained, protocol_key, noise_level, layer) DO UPDATE SET method = excluded.method,
  dataset = excluded.dataset, noise_protocol = excluded.noise_protocol, probe_protocol = excluded.probe_protocol,
  pooling = excluded.pooling, mean = excluded.mean, std = excluded.std, min = excluded.min, max = excluded.max, n = excluded.n,
  seeds = excluded.seeds, parameters = excluded.parameters, updated_at = now()
WHERE (c.method, c.dataset, c.noise_protocol, c.probe_protocol, c.pooling, c.mean, c.std, c.min, c.max, c.n, c.seeds, c.parameters)
  IS DISTINCT FROM (excluded.method, excluded.dataset, excluded.noise_protocol, excluded.probe_protocol, excluded.pooling,
    excluded.mean, excluded.std, excluded.min, excluded.max, excluded.n, excluded.seeds, excluded.parameters);

INSERT INTO heatmap_cells AS h (sweep_id, untrained, model_name, noise_level, layer, method, mean, std, min, max, n)
SELECT pr.sweep_id, r.untrained, r.model_name, pr.noise_level, pr.layer, pr.method,
       avg(pr.accuracy ORDER BY pr.accuracy), stddev_samp(pr.accuracy ORDER BY pr.accuracy), min(pr.accuracy), max(pr.accuracy), count(*)
FROM probe_results pr JOIN runs r ON r.id = pr.run_id
WHERE true
GROUP BY pr.sweep_id, r.untrained, r.model_name, pr.noise_level, pr.layer, pr.method
ON CONFLICT (sweep_id, untrained, model_name, noise_level, layer, method) DO UPDATE SET mean = excluded.mean, std = excluded.std,
  min = excluded.min, max = excluded.max, n = excluded.n, updated_at = now()
WHERE (h.mean, h.std, h.min, h.max, h.n) IS DISTINCT FROM (excluded.mean, excluded.std, excluded.min, excluded.max, excluded.n);
