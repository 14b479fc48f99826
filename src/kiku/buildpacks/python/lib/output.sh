#!/usr/bin/env bash
# Output helpers in Heroku's build-log style (spec §5.2): steps, 7-space details, ` !     ` errors.
# Everything goes to stdout so that step, detail and error lines keep their order in the log.

output::step() {
	echo "-----> $*"
}

# Indents stdin by 7 spaces, line-buffered so long installs stream.
output::indent() {
	sed -u 's/^/       /'
}

# Prints stdin (or the arguments) as an error/warning block: ` !     line`, blank lines as ` !`.
output::error() {
	local line
	if [[ $# -gt 0 ]]; then
		printf '%s\n' "$@" | output::error
		return
	fi
	while IFS= read -r line || [[ -n "${line}" ]]; do
		if [[ -z "${line}" ]]; then
			echo " !"
		else
			echo " !     ${line}"
		fi
	done
}

output::warning() {
	echo
	output::error "$@"
	echo
}

# Prints an error block and exits 1.
output::fail() {
	output::error "$@"
	exit 1
}
