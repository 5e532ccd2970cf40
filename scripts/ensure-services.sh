#!/usr/bin/env bash
# Makes sure what the project needs on this machine is there: PostgreSQL, Redis, OpenBLAS, the
# Fashion-MNIST package. Starts a service that is installed but down; installs what is missing
# (Debian packages, as root). Idempotent; quiet when everything already answers.
set -euo pipefail

log() { echo "[ensure-services] $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then as_root apt-get update -qq >/dev/null; apt_updated=1; fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; }

# PostgreSQL
if ! pg_up; then
  fresh_pg=0
  command -v pg_ctlcluster >/dev/null || { apt_install postgresql; fresh_pg=1; }
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if [ "$fresh_pg" = 1 ]; then
    # A development database on loopback only: trust local TCP connections as user postgres,
    # as the project's machines are set up (DATABASE_URL carries no password).
    hba=/etc/postgresql/$version/main/pg_hba.conf
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  log "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  [ "$fresh_pg" = 1 ] && { as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload || true; }
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  pg_up || { log "PostgreSQL does not answer on 127.0.0.1:5432"; exit 1; }
fi

# Redis
if ! redis_up; then
  command -v redis-server >/dev/null || apt_install redis-server
  log "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no >/dev/null
  for _ in $(seq 1 30); do redis_up && break; sleep 0.5; done
  redis_up || { log "Redis does not answer on 127.0.0.1:6379"; exit 1; }
fi

# Fashion-MNIST (Debian's dataset-fashion-mnist)
if [ -z "${DDAE_DATA_DIR:-}" ] && [ ! -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ]; then
  apt_install dataset-fashion-mnist
fi

# OpenBLAS, which the native kernels (libs/native-kernels) load at run time; without it workers
# fall back to the wasm backend. Installed before npm ci, which builds the addon.
if ! ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so\.0'; then
  apt_install libopenblas0-pthread
fi

# Software Vulkan for the webgpu backend's tests (Dawn on Mesa's lavapipe; CI has no GPU): the
# Vulkan loader and a Mesa recent enough for Dawn. Debian 12's own Mesa 22.3 is refused by Dawn
# ("shaderUniform*ArrayDynamicIndexing required"); the one in bookworm-backports (25.x) works.
mesa_ok() {
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null) || return 1
  dpkg --compare-versions "$v" ge 24 && ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'
}
if ! mesa_ok; then
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  if [ "$codename" = bookworm ]; then
    if ! grep -rqs '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      log "adding the bookworm-backports suite to apt's sources"
      printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm-backports' 'Components: main' \
        'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' | as_root tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null
      apt_updated=0
    fi
    apt_install -t bookworm-backports mesa-vulkan-drivers libvulkan1
  else
    apt_install mesa-vulkan-drivers libvulkan1
  fi
  mesa_ok || log "warning: mesa-vulkan-drivers >= 24 and libvulkan1 are still missing: the webgpu tests will fail"
fi

# Headless Chromium and the fonts the web page names, for the page's browser test
# (apps/api/src/web/web-page.int-spec.ts drives Debian's chromium over its DevTools pipe).
if [ -z "${CHROME_PATH:-}" ] && [ ! -x /usr/lib/chromium/chromium ]; then
  apt_install chromium fonts-dejavu-core fonts-liberation
fi
