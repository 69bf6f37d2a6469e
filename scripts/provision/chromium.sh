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

# shellcheck source=scripts/provision/apt.sh
source "$(dirname "$0")/apt.sh"
# Fonts: without them headless Chromium renders chart labels as boxes in screenshots.
apt_install chromium fonts-dejavu-core

if ! "$CHROMIUM" --headless --no-sandbox --version >/dev/null 2>&1; then
  echo "chromium: installed but $CHROMIUM does not run" >&2
  exit 1
fi
echo "chromium: $("$CHROMIUM" --headless --no-sandbox --version 2>/dev/null)"
