#!/usr/bin/env bash
# Installs everything kiku needs on a Debian 12 host: Debian packages, then a locked virtualenv.
# Idempotent and quick when nothing is missing; `make install` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages kiku drives: git (repositories, smart HTTP), python3-venv (the virtualenv),
# postgresql (the optional state store, and later the Postgres add-on; kiku starts its own clusters),
# bubblewrap, debootstrap, iproute2, util-linux, nftables (dyno sandboxes, their stack root
# filesystem, and the rule that keeps dynos from opening connections to the host);
# gcc, libc6-dev and python3-dev compile the router's fast lane (scripts/build-lane.sh).
DEBIAN_PACKAGES=(git python3 python3-venv ca-certificates postgresql
  bubblewrap debootstrap iproute2 util-linux nftables gcc libc6-dev python3-dev)
UV_VERSION=0.13.8

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "==> installing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
    SUDO="sudo"
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), "kiku needs Python 3.11 or newer"'

# uv installs the locked dependencies fast; it lives in its own small bootstrap venv.
UV=.cache/uv-bootstrap/bin/uv
if ! { [ -x "$UV" ] && "$UV" --version 2>/dev/null | grep -q " $UV_VERSION"; }; then
  echo "==> bootstrapping uv $UV_VERSION"
  rm -rf .cache/uv-bootstrap
  "$PYTHON" -m venv .cache/uv-bootstrap
  .cache/uv-bootstrap/bin/pip install -q --disable-pip-version-check "uv==$UV_VERSION"
fi

echo "==> syncing .venv from uv.lock"
# Compiled bytecode up front: start-up stays fast even where PYTHONDONTWRITEBYTECODE is set.
UV_PYTHON_DOWNLOADS=never "$UV" sync --frozen --compile-bytecode --python "$PYTHON" --quiet
# The dynos' stack root filesystem (debootstrap, about a minute once; a no-op afterwards).
if [ "$(id -u)" -eq 0 ]; then
  scripts/build-stack.sh
else
  echo "==> the dyno stack needs root once: sudo scripts/build-stack.sh"
fi
echo "==> installed: .venv/bin/kiku"
