#!/usr/bin/env bash
# Regenerate requirements.lock, requirements-dev.lock and requirements-checkov.lock (every transitive dependency pinned, with
# the sha256 of every published file) from the hand-edited requirements*.txt. `make install` and
# the pipeline's synth step install with `pip --require-hashes`, so a changed or substituted file
# fails the install. Run after editing requirements*.txt, and commit the lock files with it.
#
# Usage: tools/lock_requirements.sh [constraints.txt]   (e.g. a `pip freeze` to keep versions)
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.8
tool_dir="${TMPDIR:-/tmp}/lock-requirements-uv-$UV_VERSION"
[[ -x "$tool_dir/bin/uv" ]] || { python3 -m venv "$tool_dir" && "$tool_dir/bin/pip" install --quiet "uv==$UV_VERSION"; }
constraints=()
[[ -z "${1:-}" ]] || constraints=(--constraint "$1")
for input in requirements.txt requirements-dev.txt requirements-checkov.txt; do
  # --universal: one lock for Linux (CI, CodeBuild) and developers' machines, with markers.
  "$tool_dir/bin/uv" pip compile --quiet --universal --python-version 3.11 --generate-hashes \
    --no-annotate --no-header --index-url https://pypi.org/simple "${constraints[@]}" \
    "$input" --output-file "${input%.txt}.lock"
done
