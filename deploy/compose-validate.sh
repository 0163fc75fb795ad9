#!/usr/bin/env bash
# Validate docker-compose.yml without a Docker engine.
#
#   deploy/compose-validate.sh [COMPOSE_FILE]     (default: docker-compose.yml at the repo root)
#
# The validator is deploy/compose-validate/, a small Go program around
# compose-go/v2 (the loader Docker Compose v2 itself uses: compose-spec JSON
# schema, interpolation, cross-references) plus BuildKit's Dockerfile parser
# for the services' build Dockerfiles. Stricter than `docker compose config`:
# loader warnings (an unset ${VAR} without default, an obsolete `version:`)
# are errors, and local build contexts, Dockerfiles and COPY sources must exist.
# The file is checked with no profile and with --profile monitoring.
#
# First run builds the validator with the machine's Go (>= 1.24.3; modules
# from the Go proxy, ~20 s) into a cache keyed by its sources; later runs reuse it.
#
# Exit status: 0 valid, 1 invalid, 3 validator could not be built (no Go, no network).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
src="$here/compose-validate"
file="${1:-$repo/docker-compose.yml}"

if [[ ! -f "$file" ]]; then
    echo "compose-validate: $file: no such file" >&2
    exit 1
fi

if ! command -v go >/dev/null 2>&1; then
    for d in /usr/local/go/bin /usr/lib/go/bin; do
        if [[ -x "$d/go" ]]; then PATH="$d:$PATH"; break; fi
    done
fi
if ! command -v go >/dev/null 2>&1; then
    echo "compose-validate: validator unavailable: no Go toolchain on PATH (need Go >= 1.24.3)" >&2
    exit 3
fi

# Never fetch a toolchain; never rewrite go.mod/go.sum.
export GOTOOLCHAIN=local GOFLAGS=-mod=readonly

key="$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-16)"
cache="${DAMPAK_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dampak-tools}"
bin="$cache/compose-validate-$key"

if [[ ! -x "$bin" ]]; then
    mkdir -p "$cache"
    tmp="$bin.tmp.$$"
    log="$cache/compose-validate-build.$$.log"
    if ! (cd "$src" && go build -trimpath -ldflags='-s -w' -o "$tmp" .) >"$log" 2>&1; then
        echo "compose-validate: validator unavailable: go build failed:" >&2
        cat "$log" >&2
        rm -f "$log" "$tmp"
        exit 3
    fi
    rm -f "$log"
    mv -f "$tmp" "$bin"   # atomic: concurrent runs never see a half-written binary
fi

"$bin" -q -check-build "$file"
"$bin" -q -check-build -profile monitoring "$file"
echo "compose-validate: OK $file (default and monitoring profiles)"
