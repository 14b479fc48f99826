"""Pipfile.lock helper for the kiku Python buildpack, run by any host CPython >= 3.6.

  pipfile_lock.py python-version PIPFILE_LOCK   -> prints python_full_version or python_version
  pipfile_lock.py requirements PIPFILE_LOCK     -> prints a pinned requirements file of `default`

Exits 2 with a message on stderr when the file is not valid Pipfile.lock JSON. Keep this file
free of syntax newer than Python 3.6 (annotations that need newer Pythons are quoted).
"""

import json
import sys
from typing import Any


def load(path: str) -> "dict[str, Any]":
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        sys.stderr.write(f"Pipfile.lock is not valid JSON: {e}\n")
        sys.exit(2)
    if not isinstance(data, dict):
        sys.stderr.write("Pipfile.lock is not a JSON object\n")
        sys.exit(2)
    return data


def python_version(data: "dict[str, Any]") -> str:
    requires = data.get("_meta", {}).get("requires", {}) or {}
    return str(requires.get("python_full_version") or requires.get("python_version") or "")


def requirement_line(name: str, spec: Any) -> str:
    if isinstance(spec, str):
        return name + ("" if spec in ("", "*") else spec)
    extras = spec.get("extras") or []
    full = name + (f"[{','.join(extras)}]" if extras else "")
    if spec.get("path"):
        return ("-e " if spec.get("editable") else "") + str(spec["path"])
    if spec.get("git"):
        ref = spec.get("ref")
        line = f"{full} @ git+{spec['git']}" + (f"@{ref}" if ref else "")
    elif spec.get("file"):
        line = f"{full} @ {spec['file']}"
    else:
        version = spec.get("version") or ""
        line = full + ("" if version in ("", "*") else version)
    if spec.get("markers"):
        line += f" ; {spec['markers']}"
    for digest in spec.get("hashes") or []:
        line += f" \\\n    --hash={digest}"
    return line


def requirements(data: "dict[str, Any]") -> str:
    lines = []
    sources = data.get("_meta", {}).get("sources") or []
    urls = [s["url"] for s in sources if s.get("url")]
    if urls and urls[0].rstrip("/") != "https://pypi.org/simple":
        lines.append(f"--index-url {urls[0]}")
    lines += [f"--extra-index-url {url}" for url in urls[1:]]
    for name, spec in sorted((data.get("default") or {}).items()):
        lines.append(requirement_line(name, spec))
    return "\n".join(lines) + "\n"


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] not in ("python-version", "requirements"):
        sys.stderr.write(__doc__ or "")
        return 2
    data = load(sys.argv[2])
    if sys.argv[1] == "python-version":
        print(python_version(data))
    else:
        sys.stdout.write(requirements(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
