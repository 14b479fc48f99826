#!/usr/bin/env bash
# The runtime catalog: local CPython interpreters the build may use (no downloads here).
#
# Source: KIKU_PYTHON_RUNTIMES (colon-separated interpreter paths) or, when unset, discovery in
# /usr/local/bin, /usr/bin, pyenv roots and /opt/python*. Probing an interpreter costs ~30 ms, so
# results are remembered in a probe cache keyed on the file's size, mtime and inode.
#
# After runtimes::load: RUNTIME_VERSIONS / RUNTIME_PATHS / RUNTIME_PREFIXES are parallel arrays
# sorted by ascending version, one entry per distinct X.Y.Z (the first path found wins).

RUNTIME_VERSIONS=()
RUNTIME_PATHS=()
RUNTIME_PREFIXES=()

runtimes::_candidates() {
	local p root
	if [[ -n "${KIKU_PYTHON_RUNTIMES:-}" ]]; then
		local IFS=:
		for p in ${KIKU_PYTHON_RUNTIMES}; do
			[[ -n "${p}" ]] && echo "${p}"
		done
		return 0
	fi
	local saved_nullglob
	saved_nullglob=$(shopt -p nullglob || true)
	shopt -s nullglob
	for p in /usr/local/bin/python3.* /usr/bin/python3.*; do
		[[ "${p##*/}" =~ ^python3\.[0-9]+$ ]] && echo "${p}"
	done
	local roots=()
	[[ -n "${PYENV_ROOT:-}" ]] && roots+=("${PYENV_ROOT}")
	[[ -n "${HOME:-}" ]] && roots+=("${HOME}/.pyenv")
	roots+=(/root/.pyenv)
	local seen_roots=" "
	for root in "${roots[@]}"; do
		[[ "${seen_roots}" == *" ${root} "* ]] && continue
		seen_roots+="${root} "
		for p in "${root}"/versions/*/bin/python3; do
			echo "${p}"
		done
	done
	for p in /opt/python*/bin/python3; do
		echo "${p}"
	done
	eval "${saved_nullglob}"
}

# Probe output: "<implementation> <releaselevel> <X.Y.Z> <base_prefix>".
RUNTIMES_PROBE='import sys; v = sys.version_info; print("%s %s %d.%d.%d %s" % (sys.implementation.name, v[3], v[0], v[1], v[2], sys.base_prefix))'

# runtimes::load PROBE_CACHE_FILE
runtimes::load() {
	local probe_cache="$1"
	local candidates=() p
	while IFS= read -r p; do
		[[ -f "${p}" && -x "${p}" ]] && candidates+=("${p}")
	done < <(runtimes::_candidates)
	RUNTIME_VERSIONS=()
	RUNTIME_PATHS=()
	RUNTIME_PREFIXES=()
	[[ ${#candidates[@]} -eq 0 ]] && return 0

	local sigs=()
	mapfile -t sigs < <(stat -L -c '%s:%Y:%i' -- "${candidates[@]}")

	# Known probe results: path<TAB>signature<TAB>probe output.
	declare -A known=()
	local path sig result
	if [[ -f "${probe_cache}" ]]; then
		while IFS=$'\t' read -r path sig result; do
			known["${path}"]="${sig}"$'\t'"${result}"
		done <"${probe_cache}"
	fi

	local tmp i
	tmp=$(mktemp -d)
	local -a pending=()
	for i in "${!candidates[@]}"; do
		path="${candidates[$i]}"
		if [[ "${known[${path}]:-}" != "${sigs[$i]}"$'\t'* ]]; then
			pending+=("${i}")
			("${path}" -I -c "${RUNTIMES_PROBE}" >"${tmp}/${i}" 2>/dev/null || echo "broken" >"${tmp}/${i}") &
		fi
	done
	wait
	for i in "${pending[@]}"; do
		known["${candidates[$i]}"]="${sigs[$i]}"$'\t'"$(head -n1 "${tmp}/${i}")"
	done
	rm -rf "${tmp}"

	# Rewrite the probe cache (best effort) with just the current candidates.
	if [[ ${#pending[@]} -gt 0 ]] && mkdir -p "$(dirname "${probe_cache}")" 2>/dev/null; then
		for path in "${candidates[@]}"; do
			printf '%s\t%s\n' "${path}" "${known[${path}]}"
		done >"${probe_cache}.tmp" && mv -f "${probe_cache}.tmp" "${probe_cache}"
	fi

	local impl level version prefix lines=() seen=" "
	for path in "${candidates[@]}"; do
		result="${known[${path}]#*$'\t'}"
		read -r impl level version prefix <<<"${result}"
		[[ "${impl}" == "cpython" && "${level}" == "final" && "${version}" =~ ^3\.[0-9]+\.[0-9]+$ ]] || continue
		[[ "${seen}" == *" ${version} "* ]] && continue
		seen+="${version} "
		lines+=("${version}"$'\t'"${path}"$'\t'"${prefix}")
	done
	[[ ${#lines[@]} -eq 0 ]] && return 0
	while IFS=$'\t' read -r version path prefix; do
		RUNTIME_VERSIONS+=("${version}")
		RUNTIME_PATHS+=("${path}")
		RUNTIME_PREFIXES+=("${prefix}")
	done < <(printf '%s\n' "${lines[@]}" | sort -t. -k1,1n -k2,2n -k3,3n)
}

# runtimes::available — "3.10.13, 3.11.7, ..." for error messages.
runtimes::available() {
	local IFS=,
	local joined="${RUNTIME_VERSIONS[*]}"
	echo "${joined//,/, }"
}

# runtimes::resolve REQUEST (X.Y or X.Y.Z): sets RESOLVED_INDEX to the newest matching entry.
runtimes::resolve() {
	local request="$1" i
	RESOLVED_INDEX=""
	for i in "${!RUNTIME_VERSIONS[@]}"; do
		local v="${RUNTIME_VERSIONS[$i]}"
		if [[ "${v}" == "${request}" || "${v%.*}" == "${request}" ]]; then
			RESOLVED_INDEX="${i}"
		fi
	done
	[[ -n "${RESOLVED_INDEX}" ]]
}
