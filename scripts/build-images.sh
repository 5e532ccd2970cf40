#!/usr/bin/env bash
# Builds infra/Dockerfile's images without a Docker engine (buildah, rootful, chroot isolation,
# overlay or vfs storage in a store of its own), then runs a smoke command in each, and prints one JSON line per image:
#   {"target":"cpu","image":"localhost/ddae:latest","size":"1.39 GB","seconds":...,"smoke":{...}}
#
#   sudo bash scripts/build-images.sh                  both targets: cpu, gpu-worker
#   sudo bash scripts/build-images.sh gpu-worker       one
#
# Docker Hub is unreachable on the project's machines, so `FROM node:20-bookworm-slim` is served by a
# STAND-IN built here, not the official image: Debian bookworm (debootstrap --variant=minbase from
# deb.debian.org, with the official image's apt sources) plus THIS machine's Node.js 20 (binary,
# headers, npm, corepack) laid out as the official image lays it out (/usr/local), with its ENV.
# It is tagged docker.io/library/node:20-bookworm-slim in buildah's store and `bud --pull=never`
# uses it. The base's root filesystem is cached in tmp/images/ (git- and docker-ignored), the
# image and the build's layers (--layers) in buildah's store /var/lib/containers/ddae-<driver>: a
# second run reuses them (IMAGES_REBUILD_BASE=1 rebuilds the base; IMAGES_STORAGE_DRIVER=vfs|overlay).
# Needs root, buildah and debootstrap (apt-get install -y buildah debootstrap), deb.debian.org and
# the npm registry (the build's apt-get and npm ci).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
say() { echo "[build-images $(($(date +%s) - started))s] $*" >&2; }
die() { say "error: $*"; exit 1; }

BASE=docker.io/library/node:20-bookworm-slim
CACHE=tmp/images
MIRROR=${IMAGES_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Storage: overlay where the kernel mounts it (here it does), else vfs. Both work in this sandbox;
# vfs copies the whole root filesystem for every layer (~2 GB once node_modules is in): on 2 shared
# cores each one-file COPY of the build stage took about a minute, so vfs is the fallback only.
# Each driver gets its own store (containers/storage refuses a store made by another driver).
DRIVER=${IMAGES_STORAGE_DRIVER:-}
export BUILDAH_ISOLATION=chroot
bh() { buildah --root "/var/lib/containers/ddae-$DRIVER" --runroot "/run/containers/ddae-$DRIVER" --storage-driver "$DRIVER" "$@"; }

[ "$(id -u)" = 0 ] || die "run as root (buildah's vfs store and debootstrap need it)"
for tool in buildah debootstrap node; do command -v "$tool" >/dev/null || die "$tool is missing (apt-get install -y buildah debootstrap)"; done
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(cpu gpu-worker)
for t in "${targets[@]}"; do
  grep -qE "^FROM [^ ]+ AS $t\$" infra/Dockerfile || die "infra/Dockerfile has no target \"$t\""
done
mkdir -p "$CACHE"
if [ -z "$DRIVER" ]; then
  DRIVER=overlay
  probe=$(bh from --pull=never scratch 2>/dev/null) && bh mount "$probe" >/dev/null 2>&1 || DRIVER=vfs
  [ -n "${probe:-}" ] && bh rm "$probe" >/dev/null 2>&1
  true
fi
say "buildah $(buildah --version | awk '{print $3}'), storage driver $DRIVER, isolation chroot"

# --- the stand-in base image ----------------------------------------------------------------------
node_version=$(node -p 'process.versions.node')
[ "${node_version%%.*}" = 20 ] || die "this machine's Node.js is $node_version; the stand-in for node:20 needs a Node 20"
node_prefix=$(node -p 'require("path").resolve(process.execPath, "../..")')
[ -f "$node_prefix/include/node/node_api.h" ] || die "Node's headers are missing under $node_prefix/include/node"
[ -d "$node_prefix/lib/node_modules/npm" ] || die "npm is missing under $node_prefix/lib/node_modules"

rootfs_tar="$CACHE/node-20-bookworm-slim-$node_version.tar"
build_rootfs() {
  local dir="$CACHE/rootfs"
  rm -rf "$dir" && mkdir -p "$dir"
  say "debootstrap --variant=minbase bookworm ($MIRROR)"
  nice -n 10 debootstrap --variant=minbase bookworm "$dir" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
    die "debootstrap failed; see $CACHE/debootstrap.log"
  # The apt sources of the official debian:bookworm-slim (deb822), and its apt cleaning hooks.
  rm -f "$dir/etc/apt/sources.list"
  cat >"$dir/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
EOF
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb
  # Node.js as the official image installs it: /usr/local/{bin,include/node,lib/node_modules}.
  mkdir -p "$dir/usr/local/bin" "$dir/usr/local/include" "$dir/usr/local/lib/node_modules"
  cp -a "$(node -p 'process.execPath')" "$dir/usr/local/bin/node"
  cp -a "$node_prefix/include/node" "$dir/usr/local/include/"
  cp -a "$node_prefix/lib/node_modules/npm" "$node_prefix/lib/node_modules/corepack" "$dir/usr/local/lib/node_modules/"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$dir/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$dir/usr/local/bin/npx"
  ln -s ../lib/node_modules/corepack/dist/corepack.js "$dir/usr/local/bin/corepack"
  # The official image's user (uid/gid 1000), unused by our Dockerfile but present there.
  env -i chroot "$dir" /bin/sh -c 'groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node'
  env -i chroot "$dir" /usr/local/bin/node -e 'process.exit(0)' || die "the copied node does not run in the bookworm root (missing libraries?)"
  tar -C "$dir" --numeric-owner -cf "$rootfs_tar.tmp" . && mv "$rootfs_tar.tmp" "$rootfs_tar"
  rm -rf "$dir"
}

if [ -n "${IMAGES_REBUILD_BASE:-}" ]; then rm -f "$rootfs_tar"; bh rmi -f "$BASE" >/dev/null 2>&1 || true; fi
if [ "$(bh inspect --type image --format '{{index .OCIv1.Config.Labels "node.version"}}' "$BASE" 2>/dev/null)" = "$node_version" ]; then
  say "base $BASE (stand-in, Node $node_version) already in buildah's store"
else
  [ -f "$rootfs_tar" ] || build_rootfs
  say "importing the stand-in base as $BASE"
  ctr=$(bh from --pull=never scratch)
  bh add "$ctr" "$rootfs_tar" / >/dev/null
  bh config \
    --env NODE_VERSION="$node_version" \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd node \
    --label "node.version=$node_version" \
    --label "org.opencontainers.image.description=stand-in for node:20-bookworm-slim: debootstrap minbase bookworm + this machine's Node.js $node_version (scripts/build-images.sh)" \
    "$ctr"
  bh commit --rm "$ctr" "$BASE" >/dev/null
fi

# --- the images -----------------------------------------------------------------------------------
# Where HTTPS goes through a TLS-intercepting proxy (this machine's egress: the npm registry's
# certificate is issued by the proxy's own CA, which only the host's bundle holds), npm ci inside
# the build fails with SELF_SIGNED_CERT_IN_CHAIN. Then the RUN steps get the host's bundle and an
# npmrc naming it as bind mounts: they are not part of any layer, the images stay as the
# Dockerfile makes them, and a machine with a direct connection gets no mount at all.
build_mounts=()
if ! env -u NODE_EXTRA_CA_CERTS node -e 'fetch("https://registry.npmjs.org/").then(() => process.exit(0), () => process.exit(1))'; then
  bundle=${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}
  [ -f "$bundle" ] || die "the npm registry's certificate is not trusted by Node's own CAs, and there is no CA bundle at $bundle to mount"
  say "HTTPS is intercepted here: mounting $bundle for the build's npm (not kept in the images)"
  echo "cafile=/run/build-ca/ca-certificates.crt" >"$CACHE/npmrc"
  build_mounts=(-v "$(realpath "$bundle"):/run/build-ca/ca-certificates.crt:ro" -v "$PWD/$CACHE/npmrc:/usr/local/etc/npmrc:ro")
fi

declare -A TAG=([cpu]=localhost/ddae:latest [gpu-worker]=localhost/ddae-gpu-worker:latest)

# The native kernels on OpenBLAS, through the worker's own backend selection (DDAE_BACKEND=native).
SMOKE_CPU='
const { selectBackend } = require("./libs/compute/src/backend.ts");
const tf = require("@tensorflow/tfjs");
selectBackend("native").then((s) => {
  const y = tf.matMul(tf.ones([64, 64]), tf.ones([64, 64])).dataSync()[0];
  const workerBundle = ["main", "compute-child"].every((f) => require("fs").existsSync(`dist/worker/${f}.js`));
  console.log(JSON.stringify({ backend: s.backend, detail: s.detail, matmul64: y, workerBundle }));
}, (e) => { console.log(JSON.stringify({ error: e.message })); process.exit(1); });'
# The GPU image's loader and environment, then the backend selection it would make (no GPU here:
# it must refuse, not fall back to the CPU).
SMOKE_GPU='
const fs = require("fs");
const { execFileSync } = require("child_process");
const loader = execFileSync("ldconfig", ["-p"], { encoding: "utf8" }).split("\n").find((l) => l.includes("libvulkan.so.1"));
const icds = ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"].flatMap((d) => (fs.existsSync(d) ? fs.readdirSync(d) : []));
const out = { libvulkan: loader ? loader.trim().split(" => ")[1] : null, vulkanDrivers: icds, NVIDIA_DRIVER_CAPABILITIES: process.env.NVIDIA_DRIVER_CAPABILITIES, DDAE_BACKEND: process.env.DDAE_BACKEND, workerBundle: fs.existsSync("dist/worker/main.js") && fs.existsSync("dist/worker/compute-child.js") };
const { selectBackend } = require("./libs/compute/src/backend.ts");
selectBackend(process.env.DDAE_BACKEND).then(
  (s) => { out.backend = s.backend; console.log(JSON.stringify(out)); },
  (e) => { out.backendRefused = e.message.split("\n")[0]; console.log(JSON.stringify(out)); });'

smoke() {
  local t=$1 image=$2 ctr result= empty='{}'
  ctr=$(bh from --pull=never "$image")
  # shellcheck disable=SC2064
  trap "bh rm $ctr >/dev/null 2>&1 || true" RETURN
  if [ "$t" = gpu-worker ]; then
    result=$(bh run "$ctr" -- /usr/local/bin/ddae-gpu-entrypoint node -r @swc-node/register -e "$SMOKE_GPU" 2>>"$CACHE/smoke-$t.log") || true
  else
    result=$(bh run "$ctr" -- node -r @swc-node/register -e "$SMOKE_CPU" 2>>"$CACHE/smoke-$t.log") || true
    # The CLI starts (compiled at run time, as the image's api/cli/migrate commands are).
    if bh run "$ctr" -- node -r @swc-node/register apps/cli/src/main.ts --help >/dev/null 2>>"$CACHE/smoke-$t.log"; then
      result=$(node -e 'const r = JSON.parse(process.argv[1]); r.cliHelp = "ok"; console.log(JSON.stringify(r))' "${result:-$empty}")
    fi
  fi
  [ -n "$result" ] || result="{\"error\":\"no output; see $CACHE/smoke-$t.log\"}"
  echo "$result" | tail -1
}

for t in "${targets[@]}"; do
  tag=${TAG[$t]:-localhost/ddae-$t:latest}
  say "buildah bud --target $t -t $tag (log: $CACHE/build-$t.log)"
  t0=$(date +%s)
  if ! nice -n 10 buildah --root "/var/lib/containers/ddae-$DRIVER" --runroot "/run/containers/ddae-$DRIVER" --storage-driver "$DRIVER" bud --pull=never --isolation chroot --layers "${build_mounts[@]}" \
    -f infra/Dockerfile --target "$t" -t "$tag" . >"$CACHE/build-$t.log" 2>&1; then
    tail -25 "$CACHE/build-$t.log" >&2
    echo "{\"target\":\"$t\",\"error\":\"build failed; see $CACHE/build-$t.log\",\"seconds\":$(($(date +%s) - t0))}"
    exit 1
  fi
  seconds=$(($(date +%s) - t0))
  size=$(bh images --noheading --format '{{.Size}}' "$tag" | head -1)
  : >"$CACHE/smoke-$t.log"
  result=$(smoke "$t" "$tag")
  echo "{\"target\":\"$t\",\"image\":\"$tag\",\"size\":\"$size\",\"seconds\":$seconds,\"smoke\":$result}"
done
say "done"
