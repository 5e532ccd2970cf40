#!/usr/bin/env bash
# The GPU measurements of docs/results.md in one run, for a GPU host lent for minutes (GPU.md):
# Node.js, node_modules and the network may all be missing there, so everything it needs is packed
# here first into .gpu-check/ (git-ignored; carried to the host beside the working tree, < 64 MiB).
#
#   bash scripts/gpu-check.sh pack     here: Node (xz), esbuild bundles of bench/ (xz) with Dawn's
#                                      dawn.node (xz), the Vulkan loader's .deb files, a
#                                      Fashion-MNIST slice
#   bash scripts/gpu-check.sh run      there (the default): unpacks, installs the Vulkan loader if
#                                      missing, finds NVIDIA's Vulkan driver, then writes under $OUT:
#     gpu.txt               nvidia-smi, torch, the Vulkan driver files, the environment used
#     adapters.json         every adapter Dawn offers
#     bench-train.json      npm run bench -- train --backend webgpu: our training step vs PyTorch (CUDA fp32)
#     bench-features.json   the same for the feature pass
#     profile.json          where one training step's time goes, per kernel (GPU timestamp queries)
#     pretrain-probe.json   a short inline pretrain + probe of every decoder block, on the GPU
#     summary.json          img/s both sides, ratios, fraction of the GPU's fp32 peak, the goals,
#                           the profile's top kernels and every step's error
#     logs.txt              every step's stderr and error, one after the other
#   A step that fails or runs out of time leaves <step>.error and the others still run. At most 8
#   files come back from a lent machine: the run ends with exactly the 8 above.
#
# On a lent device machine: pack here first, then run there with `.gpu-check` among the carried
# (git-ignored) paths, e.g. `bash scripts/gpu-check.sh run` with OUT set by the machine, a time
# limit of about 8 minutes and room for one rerun.
#
# Sizes: GPU_CHECK_SIZES=full (default: the base-32 UNet at batch 64, the issue's setting) or
# tiny (base 8, batch 4, 1 iteration: to try the whole script on a software adapter, e.g. lavapipe).
# Steps: GPU_CHECK_ONLY="bench-train.json profile.json" runs only those (summary.json always runs).
# Time: `full` is sized to finish well inside 8 minutes on an H200 (each step has its own timeout).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PACK="$ROOT/.gpu-check"
MODE=${1:-run}
SIZES=${GPU_CHECK_SIZES:-full}
log() { echo "[gpu-check] $*" >&2; }

pack() {
  set -e
  cd "$ROOT"
  rm -rf "$PACK"
  mkdir -p "$PACK/app/bench" "$PACK/app/node_modules/webgpu/dist/linux-x64" "$PACK/debs" "$PACK/data/fashion-mnist"
  log "bundling bench/ with esbuild"
  # webgpu stays a package (it loads dawn.node beside itself); tfjs-node, wasm and our native addon
  # are optional backends the check never selects.
  for entry in main ours gpu-check profile; do
    npx --no-install esbuild "bench/$entry.ts" --bundle --platform=node --target=node20 --format=cjs \
      --outfile="$PACK/app/bench/$entry.cjs" --log-level=warning \
      --external:webgpu --external:@tensorflow/tfjs-node --external:@tensorflow/tfjs-node-gpu \
      --external:@tensorflow/tfjs-backend-wasm --external:'*.node' --external:@swc-node/register
  done
  # The four bundles each carry tfjs (6-8 MiB each): xz, as Node and dawn.node are, to travel.
  xz -T2 -6 "$PACK"/app/bench/*.cjs
  cp bench/torch_twin.py "$PACK/app/bench/"
  cp node_modules/webgpu/package.json node_modules/webgpu/index.js "$PACK/app/node_modules/webgpu/"
  xz -T2 -6 -c node_modules/webgpu/dist/linux-x64/dawn.node > "$PACK/app/node_modules/webgpu/dist/linux-x64/dawn.node.xz"
  log "packing Node $(node -v)"
  xz -T2 -6 -c "$(command -v node)" > "$PACK/node.xz"
  log "downloading the Vulkan loader's packages"
  (cd "$PACK/debs" && apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null)
  log "slicing Fashion-MNIST (the first ${GPU_CHECK_TRAIN_IMAGES:-12000} training images, the whole test set)"
  node - "$PACK/data/fashion-mnist" "${GPU_CHECK_TRAIN_IMAGES:-12000}" <<'JS'
const fs = require('node:fs'), path = require('node:path'), zlib = require('node:zlib');
const [out, n] = [process.argv[2], Number(process.argv[3])];
const src = process.env.DDAE_DATA_DIR ? path.join(process.env.DDAE_DATA_DIR, 'fashion-mnist') : '/usr/share/datasets/fashion-mnist';
// IDX: a big-endian header (magic, count, then the item's dimensions), then the items.
const slice = (file, header) => {
  const buf = zlib.gunzipSync(fs.readFileSync(path.join(src, file)));
  const item = header === 16 ? buf.readUInt32BE(8) * buf.readUInt32BE(12) : 1;
  const head = Buffer.from(buf.subarray(0, header));
  head.writeUInt32BE(n, 4);
  fs.writeFileSync(path.join(out, file), zlib.gzipSync(Buffer.concat([head, buf.subarray(header, header + n * item)])));
};
slice('train-images-idx3-ubyte.gz', 16);
slice('train-labels-idx1-ubyte.gz', 8);
for (const f of ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz']) fs.copyFileSync(path.join(src, f), path.join(out, f));
JS
  local bytes
  bytes=$(du -sb "$PACK" | cut -f1)
  log "packed $((bytes / 1048576)) MiB into .gpu-check/"
  if [ "$bytes" -gt $((60 * 1048576)) ]; then
    log "too big to travel (the limit is 64 MiB with the working tree)"
    exit 1
  fi
}

# Runs one step with a time limit: its JSON (last stdout line) to $OUT/<name>, or <name>.error.
step() {
  local name=$1 limit=$2
  shift 2
  if [ -n "${GPU_CHECK_ONLY:-}" ] && [[ " $GPU_CHECK_ONLY summary.json " != *" $name "* ]]; then
    log "$name: skipped (GPU_CHECK_ONLY)"
    return 0
  fi
  local started=$SECONDS
  log "$name (limit ${limit}s)"
  if timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.stdout" 2> "$OUT/$name.stderr"; then
    tail -n 1 "$OUT/$name.stdout" > "$OUT/$name"
    log "$name: done in $((SECONDS - started)) s"
  else
    local rc=$?
    { echo "exit $rc after $((SECONDS - started)) s (124: over ${limit}s)"; tail -n 30 "$OUT/$name.stderr"; } > "$OUT/$name.error"
    log "$name: FAILED (exit $rc), see $name.error"
  fi
}

run() {
  OUT=${OUT:-$ROOT/gpu-check-out}
  mkdir -p "$OUT"
  local work=${TMPDIR:-/tmp}/ddae-gpu-check
  mkdir -p "$work"
  local node=node app="$ROOT/bench" runner=() data_dir="${DDAE_DATA_DIR:-}"
  if [ -d "$PACK/app" ]; then
    # The packed bundles: no node_modules needed.
    # The packed Node (the one the bundles were tested with), whatever the host has.
    if [ -f "$PACK/node.xz" ]; then
      xz -dc "$PACK/node.xz" > "$work/node" && chmod +x "$work/node"
      node="$work/node"
    fi
    rm -rf "$work/app" && cp -r "$PACK/app" "$work/app"
    local dawn="$work/app/node_modules/webgpu/dist/linux-x64/dawn.node"
    [ -f "$dawn.xz" ] && xz -d "$dawn.xz"
    for bundle in "$work"/app/bench/*.cjs.xz; do [ -f "$bundle" ] && xz -d "$bundle"; done
    app="$work/app/bench"
    [ -d "$PACK/data/fashion-mnist" ] && data_dir="$PACK/data"
  else
    runner=(-r @swc-node/register)
  fi
  local ext=ts
  [ -d "$PACK/app" ] && ext=cjs
  if ! (ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'); then
    if [ -d "$PACK/debs" ] && [ "$(id -u)" = 0 ]; then
      log "installing the Vulkan loader from .gpu-check/debs"
      for f in "$PACK"/debs/*.deb; do dpkg -x "$f" /; done
      ldconfig
    else
      log "no libvulkan.so.1 and no packed loader to install (run as root, or apt-get install libvulkan1)"
    fi
  fi
  # NVIDIA's Vulkan driver where the loader does not look by itself (GPU.md).
  if [ -z "${VK_DRIVER_FILES:-}" ] && ! ls /etc/vulkan/icd.d/nvidia*.json /usr/share/vulkan/icd.d/nvidia*.json >/dev/null 2>&1; then
    for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/local/nvidia/icd.d/nvidia_icd.json; do
      if [ -f "$icd" ]; then export VK_DRIVER_FILES=$icd; break; fi
    done
  fi
  {
    echo "date: $(date -u +%FT%TZ)"
    echo "sizes: $SIZES"
    echo "node: $("$node" -v 2>&1)"
    echo "VK_DRIVER_FILES: ${VK_DRIVER_FILES:-unset}"
    echo "DDAE_GPU: ${DDAE_GPU:-auto}"
    echo "--- nvidia-smi"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv 2>&1 || echo "nvidia-smi unavailable"
    echo "--- torch (the benchmarks take the first Python that imports it)"
    for py in python3 /usr/bin/python3; do
      echo "$py: $("$py" -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1 | tail -n 1)"
    done
    echo "--- Vulkan driver files"
    ls /etc/vulkan/icd.d /usr/share/vulkan/icd.d 2>&1
  } > "$OUT/gpu.txt"

  local bench_args pp_config profile_args
  if [ "$SIZES" = tiny ]; then
    bench_args=(--base 8 --batch 4 --iters 1 --warmup 0)
    profile_args=(--unet tiny --batch 4 --warmup 0)
    pp_config='{"unet":{"baseChannels":8,"channelMults":[1,2],"blocksPerLevel":1,"attentionResolutions":[],"dropout":0.1,"groups":4},"steps":2,"batch":8,"trainSize":64,"timestep":100,"probe":{"trainSize":64,"testSize":64,"epochs":1}'
  else
    bench_args=(--batch 64)
    profile_args=(--unet base32 --batch 64 --warmup 2)
    # The benchmark model, trained briefly (GPU_CHECK_PRETRAIN_STEPS, default 30: about 1.5 s per
    # step on the H200 as measured on 2026-11-30), probed on 2000 / 1000 images.
    pp_config='{"unet":{"baseChannels":32,"channelMults":[1,2,2],"blocksPerLevel":2,"attentionResolutions":[],"dropout":0.1,"groups":8},"steps":'"${GPU_CHECK_PRETRAIN_STEPS:-30}"',"batch":64,"trainSize":12000,"timestep":100,"probe":{"trainSize":2000,"testSize":1000,"epochs":10}'
  fi
  pp_config="$pp_config,\"out\":\"$work/run\"${data_dir:+,\"dataDir\":\"$data_dir\"}}"
  rm -rf "$work/run"

  (cd "$ROOT" && step adapters.json 40 "$node" "${runner[@]}" "$app/gpu-check.$ext" adapters)
  (cd "$ROOT" && step bench-train.json 150 "$node" "${runner[@]}" "$app/main.$ext" train --backend webgpu --json "${bench_args[@]}")
  (cd "$ROOT" && step bench-features.json 90 "$node" "${runner[@]}" "$app/main.$ext" features --backend webgpu --json "${bench_args[@]}")
  (cd "$ROOT" && step profile.json 90 "$node" "${runner[@]}" "$app/profile.$ext" --backend webgpu --json "${profile_args[@]}")
  (cd "$ROOT" && step pretrain-probe.json 150 "$node" "${runner[@]}" "$app/gpu-check.$ext" pretrain-probe "$pp_config")
  (cd "$ROOT" && step summary.json 30 "$node" "${runner[@]}" "$app/gpu-check.$ext" summary "$OUT")
  rm -f "$OUT"/*.stdout
  # One log file for every step's stderr and error (a lent machine sends back 8 files at most).
  for f in "$OUT"/*.stderr "$OUT"/*.error; do
    [ -f "$f" ] || continue
    { echo "=== $(basename "$f")"; tail -n 60 "$f"; } >> "$OUT/logs.txt"
    rm -f "$f"
  done
  log "results in $OUT"
  [ -f "$OUT/summary.json" ] && cat "$OUT/summary.json"
}

case "$MODE" in
  pack) pack ;;
  run) run ;;
  *) echo "usage: bash scripts/gpu-check.sh [pack|run]   (GPU_CHECK_SIZES=full|tiny)" >&2; exit 2 ;;
esac
