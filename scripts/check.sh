#!/usr/bin/env bash
# The checks beside the tests, in order: lint (ruff), types (mypy, configured in pyproject.toml), the
# documentation site (mkdocs build --strict) and the wheel smoke test (scripts/check_wheel.sh). Each prints
# "check: NAME ok (S s)", or its output and "check: NAME failed", and the script stops at the first failure.
# Needs .venv (scripts/setup.sh); .ci/run runs it after the README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/.venv/bin

[ -x "$bin/python" ] || { echo "check: .venv is missing: run scripts/setup.sh first" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/daclip-kit-check.XXXXXX")
trap 'rm -rf "$work"' EXIT

# step NAME CMD...: run CMD, its output kept in a file and shown only when it fails
step() {
  local name=$1 start=$SECONDS
  shift
  if "$@" >"$work/$name.log" 2>&1; then
    echo "check: $name ok ($((SECONDS - start)) s)"
  else
    cat "$work/$name.log" >&2
    echo "check: $name failed ($*)" >&2
    exit 1
  fi
}

step ruff "$bin/ruff" check .
step mypy "$bin/mypy"
step docs env NO_MKDOCS_2_WARNING=1 "$bin/mkdocs" build --strict --site-dir "$work/site"
step wheel scripts/check_wheel.sh
