# Heroku-style build output helpers (sourced by bin/compile).
# Steps: "-----> Message"; details indented 7 spaces; warnings/errors " !     ".

topic() {
  echo "-----> $*"
}

# Indent piped output by 7 spaces, unbuffered.
indent() {
  sed -u 's/^/       /'
}

info() {
  echo "       $*"
}

warn() {
  echo " !     $*" >&2
}

# error MESSAGE... : print every argument as its own " !     " line on stderr, exit 1.
error() {
  local line
  echo >&2
  for line in "$@"; do
    echo " !     $line" >&2
  done
  echo >&2
  exit 1
}

# Export config vars from ENV_DIR (one file per var), skipping the blocklist.
export_env_dir() {
  local env_dir=$1
  local blocklist=${2:-'^(PATH|GIT_DIR|CPATH|CPPATH|LD_PRELOAD|LIBRARY_PATH|LD_LIBRARY_PATH|LANG|BUILD_DIR)$'}
  local f name
  [ -d "$env_dir" ] || return 0
  for f in "$env_dir"/*; do
    [ -f "$f" ] || continue
    name=$(basename "$f")
    [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    if ! [[ $name =~ $blocklist ]]; then
      export "$name=$(cat "$f")"
    fi
  done
}
