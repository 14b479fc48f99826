# Shared by bin/detect, bin/compile and bin/release of the static buildpack.

# Files that make another buildpack (Python, Node.js, ...) claim the app. Static never
# detects when one of them exists.
LANGUAGE_FILES=(
  package.json
  requirements.txt requirement.txt requirements.pip Requirements.txt requirments.txt
  Pipfile Pipfile.lock poetry.lock pyproject.toml uv.lock pdm.lock runtime.txt setup.py
  setup.cfg .python-version manage.py app.py main.py server.py __init__.py
  __pycache__ .venv venv
  Gemfile go.mod Godeps/Godeps.json composer.json index.php pom.xml build.gradle
  build.gradle.kts project.clj build.sbt mix.exs Cargo.toml
)

has_language_files() {
  local build_dir=$1 f
  for f in "${LANGUAGE_FILES[@]}"; do
    [ -e "$build_dir/$f" ] && return 0
  done
  return 1
}

# The directory to serve, relative to the app root: "." for a root index.html, "public" for
# public/index.html. Prints nothing when the app has no index.html.
static_root() {
  local build_dir=$1
  if [ -f "$build_dir/index.html" ]; then
    echo "."
  elif [ -f "$build_dir/public/index.html" ]; then
    echo "public"
  fi
}

# "Static", "Procfile" or nothing.
app_kind() {
  local build_dir=$1
  has_language_files "$build_dir" && return 0
  if [ -n "$(static_root "$build_dir")" ]; then
    echo "Static"
  elif [ -f "$build_dir/Procfile" ]; then
    echo "Procfile"
  fi
}
