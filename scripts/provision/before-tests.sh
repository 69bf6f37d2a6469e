#!/usr/bin/env bash
# Runs before `npm test` (the "pretest" script): the browser, WebGPU-on-SwiftShader and code-server suites need
# Debian's Chromium, the Vulkan loader, code-server and LAPACKE. Each provisioning script returns at once when
# its part is present (well under a second in all), so this costs nothing on a provisioned machine and installs
# what is missing on a fresh one (as root, or through sudo). Where it cannot, it stops with the one command to run.
set -uo pipefail
cd "$(dirname "$0")/../.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! npm run --silent provision >"$log" 2>&1; then
  cat "$log" >&2
  echo >&2
  echo "sculpt: the tests need system packages that could not be installed here; as root (or with sudo), run:" >&2
  echo "  npm run provision" >&2
  exit 1
fi
