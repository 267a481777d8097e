#!/usr/bin/env bash
# Regenerate requirements.lock, requirements-dev.lock and requirements-checkov.lock (every transitive dependency pinned, with
# the sha256 of every published file) from the hand-edited requirements*.txt. `make install` and
# the pipeline's synth step install with `pip --require-hashes`, so a changed or substituted file
# fails the install. Run after editing requirements*.txt, and commit the lock files with it.
#
# Usage: tools/lock_requirements.sh [constraints.txt]   (e.g. the app venv's `pip freeze`, to keep
#        its versions; applied to requirements.lock and requirements-dev.lock only)
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.8
tool_dir="${TMPDIR:-/tmp}/lock-requirements-uv-$UV_VERSION"
[[ -x "$tool_dir/bin/uv" ]] || { python3 -m venv "$tool_dir" && "$tool_dir/bin/pip" install --quiet "uv==$UV_VERSION"; }
constraints=()
[[ -z "${1:-}" ]] || constraints=(--constraint "$1")
lock() {
  # --universal: one lock for Linux (CI, CodeBuild) and developers' machines, with markers.
  "$tool_dir/bin/uv" pip compile --quiet --universal --python-version 3.11 --generate-hashes \
    --no-annotate --no-header --index-url https://pypi.org/simple "${@:2}" \
    "$1" --output-file "${1%.txt}.lock"
}
lock requirements.txt "${constraints[@]}"
lock requirements-dev.txt "${constraints[@]}"
# checkov has its own environment: the app's constraints (a newer packaging, boto3) do not apply.
lock requirements-checkov.txt
