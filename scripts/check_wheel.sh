#!/usr/bin/env bash
# The wheel works on its own: builds the sdist and wheel, checks what the wheel holds, installs it (not the
# source tree) into a fresh virtual environment and uses it from a folder outside the repository: import,
# --help, ls, and a restore with tiny random models it writes itself. One line per check, with the seconds
# since the start; every temporary folder is removed on exit. Needs .venv (scripts/setup.sh); the install
# takes a few minutes (torch), from pip's cache and the package index pip is set up with.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
py=$repo/.venv/bin/python
start=$SECONDS

say() { echo "check_wheel: $* [$((SECONDS - start)) s]"; }
fail() { echo "check_wheel: error: $*" >&2; exit 1; }

[ -x "$py" ] || fail "$py is missing: run scripts/setup.sh first."
work=$(mktemp -d "${TMPDIR:-/tmp}/daclip-kit-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT

# run LOG CMD...: run CMD with its output in $work/LOG, shown only when it fails.
run() {
  local log=$work/$1
  shift
  "$@" >"$log" 2>&1 || { cat "$log" >&2; fail "$* failed (output above)."; }
}

# -- build ---------------------------------------------------------------------------------------
run build.log "$py" -m build --no-isolation --outdir "$work/dist" "$repo"
wheels=("$work"/dist/*.whl)
sdists=("$work"/dist/*.tar.gz)
[ "${#wheels[@]}" -eq 1 ] && [ -f "${wheels[0]}" ] || fail "expected one wheel in $work/dist, found: ${wheels[*]}"
[ "${#sdists[@]}" -eq 1 ] && [ -f "${sdists[0]}" ] || fail "expected one sdist in $work/dist, found: ${sdists[*]}"
wheel=${wheels[0]}
sdist=${sdists[0]}
version=$(basename "$wheel" | cut -d- -f2)
say "ok: built $(basename "$wheel") and $(basename "$sdist")"

# -- what the wheel holds ------------------------------------------------------------------------
"$py" -m zipfile -l "$wheel" | awk 'NR > 1 {print $1}' >"$work/wheel.txt"
unwanted=$(grep -E '(^|/)(tests|fixtures|__pycache__)/|\.golden\.pt$|\.pyc$' "$work/wheel.txt" || true)
[ -z "$unwanted" ] || fail "the wheel holds files it must not (tests, fixtures, golden files, bytecode):
$unwanted"
grep -qx 'daclip_kit/py.typed' "$work/wheel.txt" ||
  fail "the wheel has no daclip_kit/py.typed (package-data in pyproject.toml)."
# every recipe and model config of the source tree, by name
for pattern in 'train/recipes/*.toml' 'embedders/daclip/model_configs/*.json'; do
  found=0
  for file in src/daclip_kit/$pattern; do
    grep -qx "${file#src/}" "$work/wheel.txt" || fail "the wheel lacks ${file#src/} (package-data in pyproject.toml)."
    found=$((found + 1))
  done
  [ "$found" -gt 0 ] || fail "no src/daclip_kit/$pattern in the source tree"
done
say "ok: wheel holds py.typed, the recipes and model configs; no tests, fixtures, golden files or bytecode" \
  "($(wc -l <"$work/wheel.txt") files)"

tar -tzf "$sdist" >"$work/sdist.txt"
for needed in pyproject.toml README.md LICENSE src/daclip_kit/__init__.py src/daclip_kit/py.typed; do
  grep -qx "[^/]*/$needed" "$work/sdist.txt" || fail "the sdist lacks $needed."
done
! grep -qE '(^|/)(\.venv|__pycache__)/' "$work/sdist.txt" || fail "the sdist holds .venv or __pycache__ files."
say "ok: sdist holds pyproject.toml, README.md, LICENSE and the package ($(wc -l <"$work/sdist.txt") entries)"

# -- install into a fresh virtual environment ----------------------------------------------------
"$py" -m venv "$work/venv"
venv_py=$work/venv/bin/python
# an extra without requirements of its own checks that the wheel's extras resolve; no bytecode: the
# few commands below do not need it, and compiling torch's files takes a while
run install.log env -u PYTHONPATH "$work/venv/bin/pip" install --disable-pip-version-check --no-compile "$wheel[nafnet]"
say "ok: pip install $(basename "$wheel")[nafnet] into a fresh venv"

mkdir "$work/run"
cd "$work/run"  # outside the repository: nothing can be imported from the source tree
export HF_HUB_OFFLINE=1 DACLIP_KIT_CACHE=$work/cache
unset PYTHONPATH

run extras.log "$venv_py" - "$repo/pyproject.toml" <<'EOF'
import sys
from importlib import metadata

from daclip_kit.config import tomllib

with open(sys.argv[1], "rb") as f:
    declared = set(tomllib.load(f)["project"]["optional-dependencies"])
provided = set(metadata.metadata("daclip-kit").get_all("Provides-Extra") or [])
if declared != provided:
    sys.exit(f"pyproject.toml declares the extras {sorted(declared)}, the wheel provides {sorted(provided)}")
EOF
say "ok: the wheel provides every extra of pyproject.toml"

got=$("$venv_py" -c "import daclip_kit
assert 'site-packages' in daclip_kit.__file__, daclip_kit.__file__
print(daclip_kit.__version__)")
[ "$got" = "$version" ] || fail "daclip_kit.__version__ is $got in the installed wheel, expected $version"
say "ok: import daclip_kit from site-packages, version $got"

run help.log "$work/venv/bin/daclip-kit" --help
grep -q 'data add' "$work/help.log" || fail "daclip-kit --help does not list 'data add':
$(cat "$work/help.log")"
say "ok: daclip-kit --help"

run ls.log "$work/venv/bin/daclip-kit" ls backbones
grep -q 'irsde-unet' "$work/ls.log" || fail "daclip-kit ls backbones does not list irsde-unet:
$(cat "$work/ls.log")"
say "ok: daclip-kit ls backbones"

# tiny random models and a 61x45 photo whose size is no multiple of the network's
run tiny.log "$venv_py" - <<'EOF'
import numpy as np
from PIL import Image

from daclip_kit.demo.tiny import write_tiny_models

write_tiny_models("models")
Image.fromarray(np.random.default_rng(0).integers(0, 256, (45, 61, 3), dtype=np.uint8)).save("photo.png")
EOF
run restore.log "$work/venv/bin/daclip-kit" restore photo.png -o restored.png --weights models/unet \
  --daclip-weights models/daclip --no-download --device cpu --steps 2
run size.log "$venv_py" -c "
from PIL import Image
size = Image.open('restored.png').size
assert size == (61, 45), f'restored.png is {size}, the input 61x45'"
say "ok: daclip-kit restore with tiny models: restored.png is 61x45 like its input"

cd "$repo"
rm -rf "$work"  # the trap's job too, done here so that the time below includes it
say "all checks passed"
