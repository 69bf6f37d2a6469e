#!/usr/bin/env bash
# Installs Debian's Vulkan loader (libvulkan1). With it, Dawn (the `webgpu` package) runs the WGSL kernels on
# SwiftShader, the software Vulkan driver that Debian's Chromium ships (scripts/provision/chromium.sh), so the
# webgpu tests in `npm test` need no GPU. Idempotent and quick when present.
set -euo pipefail
if ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1'; then
  echo "vulkan loader: present"
  exit 0
fi
# shellcheck source=scripts/provision/apt.sh
source "$(dirname "$0")/apt.sh"
apt_install libvulkan1
echo "vulkan loader: installed"
