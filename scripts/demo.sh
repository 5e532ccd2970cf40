#!/usr/bin/env bash
# The demo: a real sweep on Fashion-MNIST, end to end, on this machine.
# Installs what is missing (node_modules, the data package, PostgreSQL/Redis when none answers),
# migrates a fresh demo database, starts the API and two workers, submits
# examples/fashion-mnist.yaml, follows it, prints the leaderboard and the verdict, writes
# .demo/summary.json, .demo/heatmap.png and .demo/progress.png, and stops what it started.
# Options: DEMO_SPEC=<file> to run another spec; DEMO_WORKERS=<n> (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
spec=${DEMO_SPEC:-examples/fashion-mnist.yaml}
nworkers=${DEMO_WORKERS:-2}
say() { echo "[demo $(($(date +%s) - started))s] $*" >&2; }

[ -d node_modules ] || { say "installing dependencies (npm ci)"; npm ci --no-audit --no-fund; }
bash scripts/ensure-services.sh

export DATABASE_URL=${DEMO_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/ddae_demo}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
export QUEUE_PREFIX=ddae-demo
export ARTIFACT_DIR=$PWD/.demo/artifacts
export PORT=${DEMO_PORT:-3300}
export DDAE_API_URL=http://127.0.0.1:$PORT
export LOG_LEVEL=log
# The cores shared out among the workers (native kernels or wasm threads): 2 workers on 2 cores
# run 1 thread each (two single-threaded processes side by side beat two threaded ones fighting
# for the cores).
per_worker=$(( $(nproc) / nworkers > 0 ? $(nproc) / nworkers : 1 ))
export DDAE_NATIVE_THREADS=${DDAE_NATIVE_THREADS:-$per_worker}
export DDAE_WASM_THREADS=${DDAE_WASM_THREADS:-$per_worker}
mkdir -p .demo
rm -rf "$ARTIFACT_DIR"

say "fresh demo database and queue"
psql "${DATABASE_URL%/*}/postgres" -qc "DROP DATABASE IF EXISTS ${DATABASE_URL##*/} WITH (FORCE)" >/dev/null
redis-cli -u "$REDIS_URL" --scan --pattern "$QUEUE_PREFIX:*" | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null
npm run -s db:migrate
# The API wants a token of scope submit for every write; the CLI sends DDAE_API_TOKEN.
DDAE_API_TOKEN=$(node -r @swc-node/register apps/cli/src/main.ts token create --name demo --scope submit 2>/dev/null)
export DDAE_API_TOKEN

pids=()
cleanup() {
  say "stopping the API and workers"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

node -r @swc-node/register apps/api/src/main.ts >.demo/api.log 2>&1 &
pids+=($!)
# The workers run compiled JavaScript (dist/worker), built now if a source changed since the last build.
node scripts/build-worker.mjs --if-stale
for i in $(seq 1 "$nworkers"); do
  WORKER_ID=demo-worker-$i node dist/worker/main.js >".demo/worker-$i.log" 2>&1 &
  pids+=($!)
done
say "API on $DDAE_API_URL (web page at $DDAE_API_URL/), $nworkers workers (logs in .demo/)"
healthy() { node -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$DDAE_API_URL/health"; }
for _ in $(seq 1 120); do healthy && break; sleep 0.5; done
healthy || { say "the API did not come up:"; tail -20 .demo/api.log; exit 1; }

say "submitting $spec"
out=$(npm run -s ddae -- sweep submit "$spec")
id=$(echo "$out" | head -n 1)
echo "$out"
npm run -s ddae -- workers
npm run -s ddae -- sweep watch "$id" || { say "the sweep did not succeed"; npm run -s ddae -- sweep status "$id"; exit 1; }

echo
npm run -s ddae -- sweep status "$id"
echo
echo "Leaderboard (sweep $id, mean over seeds, accuracy on the Fashion-MNIST test split):"
npm run -s ddae -- leaderboard --sweep "$id" --per config --limit 50
echo
npm run -s ddae -- heatmap "$id" --out .demo/heatmap.png
npm run -s ddae -- progress "$id" --out .demo/progress.png
# The verdict, from the API's GET /api/sweeps/:id/verdict; the summary's seconds: wall time from
# the start of this script (npm ci included when it ran) to here.
seconds=$(($(date +%s) - started))
echo
npm run -s ddae -- verdict "$id" --summary .demo/summary.json --seconds "$seconds"
echo
say "done in ${seconds} s: .demo/summary.json, .demo/heatmap.png (layer x noise), .demo/progress.png (loss against step)"
echo "To browse it on the web page afterwards (the demo's database stays):" >&2
echo "  DATABASE_URL=$DATABASE_URL QUEUE_PREFIX=$QUEUE_PREFIX PORT=$PORT npm run api   # then open $DDAE_API_URL/?sweep=$id" >&2
