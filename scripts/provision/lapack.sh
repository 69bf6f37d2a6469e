#!/usr/bin/env bash
# Installs Debian's LAPACKE and OpenBLAS, the optional fast paths of the task-boundary SVD
# (src/engine/linalg/lapack.ts) and of the wasm backend's matrix products (src/engine/linalg/blas.ts).
# Idempotent and quick when present. Sculpt works without them (a portable TypeScript SVD and tfjs's wasm
# products run instead); CI installs them so that both paths are tested against each other.
set -euo pipefail
if ldconfig -p 2>/dev/null | grep -q 'liblapacke.so.3' && ldconfig -p | grep -q 'libopenblas.so.0'; then
  echo "lapack: present"
  exit 0
fi
# shellcheck source=scripts/provision/apt.sh
source "$(dirname "$0")/apt.sh"
apt_install liblapacke libopenblas0-pthread
echo "lapack: installed"
