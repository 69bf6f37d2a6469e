#!/usr/bin/env bash
# Makes the project's Python environment for the PyTorch engine (python/sculpt_torch) and its tests: a venv in
# .venv (git-ignored) with the pinned python/requirements.txt. The CLI and the extension use .venv/bin/python
# when a config names no `torch.python`. Idempotent: returns at once when the venv holds exactly these pins.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV="${SCULPT_VENV:-$PWD/.venv}"
REQS=python/requirements.txt
# Written last: the requirements it was made from, so a changed pin remakes it.
STAMP="$VENV/.sculpt-requirements"

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && cmp -s "$STAMP" "$REQS"; then
  echo "python: ${VENV#"$PWD"/} ($(grep -m1 '^torch==' "$STAMP"))"
  exit 0
fi

if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
  # shellcheck source=scripts/provision/apt.sh
  source "$(dirname "$0")/apt.sh"
  apt_install python3-venv
fi
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$REQS"
"$VENV/bin/python" -c 'import torch, transformers, safetensors'
cp "$REQS" "$STAMP"
echo "python: $("$VENV/bin/python" -c 'import torch; print("torch", torch.__version__)') in ${VENV#"$PWD"/} (installed)"
