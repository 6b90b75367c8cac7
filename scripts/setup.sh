#!/usr/bin/env bash
# The whole set-up of a fresh Debian/Ubuntu machine (the README's first command; .ci/run runs it too):
#   1. Chromium for the demo's browser test (tests/demo), from apt, only when no Chromium is found
#      (as root, or through sudo); DACLIP_KIT_CHROMIUM=/path/to/chrome skips this step;
#   2. the virtual environment .venv (created when missing, reused otherwise);
#   3. daclip-kit with its dev extra and every example plugin under plugins/, editable.
# Set DACLIP_KIT_PYTHON to pick the interpreter that creates .venv (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "setup: $*"; }
fail() { echo "setup: error: $*" >&2; exit 1; }

have_chromium() {
  if [ -n "${DACLIP_KIT_CHROMIUM:-}" ]; then
    [ -f "$DACLIP_KIT_CHROMIUM" ] || fail "DACLIP_KIT_CHROMIUM=$DACLIP_KIT_CHROMIUM is not a file; point it at a Chromium executable or unset it."
    return 0
  fi
  local name
  # The names tests/_browser.py looks for, Debian's first.
  for name in chromium chromium-browser google-chrome; do
    command -v "$name" >/dev/null 2>&1 && return 0
  done
  return 1
}

install_chromium() {
  local as_root=() log package
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 ||
      fail "Chromium is missing and installing it needs root: run 'apt-get install -y chromium' as root (or set DACLIP_KIT_CHROMIUM=/path/to/chrome), then run scripts/setup.sh again."
    as_root=(sudo)
  fi
  command -v apt-get >/dev/null 2>&1 ||
    fail "Chromium is missing and there is no apt-get here: install Chromium with this system's package manager and set DACLIP_KIT_CHROMIUM=/path/to/chrome, then run scripts/setup.sh again."
  say "installing Chromium (apt-get install -y chromium) for the demo's browser test"
  log=$(mktemp)
  ${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$log" 2>&1 ||
    { tail -n 20 "$log" >&2; rm -f "$log"; fail "apt-get update failed (output above)."; }
  # Debian names the package chromium; older Ubuntu releases call it chromium-browser.
  for package in chromium chromium-browser; do
    if ${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >>"$log" 2>&1; then
      rm -f "$log"
      have_chromium || fail "apt-get installed $package but no chromium executable is on PATH; set DACLIP_KIT_CHROMIUM=/path/to/chrome."
      return 0
    fi
  done
  tail -n 20 "$log" >&2
  rm -f "$log"
  fail "apt-get install -y chromium failed (output above); install Chromium yourself or set DACLIP_KIT_CHROMIUM=/path/to/chrome."
}

have_chromium || install_chromium

python=${DACLIP_KIT_PYTHON:-python3}
if [ ! -x .venv/bin/pip ]; then
  say "creating .venv with $python"
  "$python" -m venv .venv
fi

plugin_args=()
for plugin in plugins/*/; do
  if [ -f "$plugin/pyproject.toml" ]; then plugin_args+=(-e "$plugin"); fi
done
say "installing daclip-kit[dev] and ${#plugin_args[@]} plugin(s) into .venv (about 4 minutes on 2 cores)"
.venv/bin/pip install -q -e '.[dev]' ${plugin_args[@]+"${plugin_args[@]}"}
.venv/bin/python -c "import daclip_kit, torch; print('setup: done: daclip-kit', daclip_kit.__version__, 'torch', torch.__version__)"
