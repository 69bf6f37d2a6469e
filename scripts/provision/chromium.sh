#!/usr/bin/env bash
# Installs Debian's Chromium for the dashboard browser tests (test/webview/). Idempotent: returns at once when
# /usr/bin/chromium already runs. Needs root (or sudo) and Debian's apt; nothing is downloaded from elsewhere,
# which is why the tests drive this browser through playwright-core instead of a Playwright-managed one.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ] && "$CHROMIUM" --headless --no-sandbox --version >/dev/null 2>&1; then
  echo "chromium: $("$CHROMIUM" --headless --no-sandbox --version 2>/dev/null)"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "chromium: not installed and not running as root; install Debian's 'chromium' package" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Only refresh the package lists when apt does not know the package yet (a fresh image has empty lists).
if ! apt-cache show chromium >/dev/null 2>&1; then
  "${SUDO[@]}" apt-get update -qq
fi
# Fonts: without them headless Chromium renders chart labels as boxes in screenshots.
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null

if ! "$CHROMIUM" --headless --no-sandbox --version >/dev/null 2>&1; then
  echo "chromium: installed but $CHROMIUM does not run" >&2
  exit 1
fi
echo "chromium: $("$CHROMIUM" --headless --no-sandbox --version 2>/dev/null)"
