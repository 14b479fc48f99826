#!/usr/bin/env bash
# Compiles the router's fast lane (src/kiku/router/_lane.c) for the project's Python, into
# src/kiku/router/_lane.so next to the code that imports it. `make install` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
INCLUDE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
OUT=src/kiku/router/_lane.so
cc -O2 -g -fPIC -shared -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter \
  -Wno-missing-field-initializers -Wno-cast-function-type \
  -I"$INCLUDE" -o "$OUT.tmp" src/kiku/router/_lane.c
mv "$OUT.tmp" "$OUT"
echo "==> built $OUT"
