#!/usr/bin/env bash
# Installs what the benches drive besides kiku itself: wrk (the load generator) and nginx
# (the reference proxy for bench/router.py). Idempotent; `make bench` runs it.
#
# nginx's system service is never enabled or started: bench/router.py runs its own nginx
# with a config in a temp dir. While the package installs, a policy-rc.d that refuses every
# service start keeps the postinst from starting one on port 80.
set -euo pipefail

DEBIAN_PACKAGES=(wrk nginx)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
((${#missing[@]})) || exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi

POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
  $SUDO sh -c "printf '#!/bin/sh\nexit 101\n' > $POLICY && chmod 755 $POLICY"
  trap '$SUDO rm -f "$POLICY"' EXIT
fi

echo "==> installing Debian packages for the benches: ${missing[*]}"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
# systemd hosts enable a freshly installed unit (the policy only stops the start): undo
# that for the nginx we just installed, never for one the host already had.
if [[ " ${missing[*]} " == *" nginx "* ]] && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true
fi
