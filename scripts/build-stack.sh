#!/usr/bin/env bash
# Builds the kiku-24 stack (the dynos' read-only root filesystem) with debootstrap from the
# host's Debian mirror. Idempotent: a fast no-op when the stack is already built.
# Usage: scripts/build-stack.sh [DIR]   (default /var/lib/kiku/stacks/kiku-24; needs root)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${1:-${KIKU_STACK_DIR:-/var/lib/kiku/stacks/kiku-24}}"
exec .venv/bin/python -m kiku.dynos.stack "$DIR"
