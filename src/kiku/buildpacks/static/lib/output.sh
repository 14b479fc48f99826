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

