#!/usr/bin/env bash
# Installs code-server (VS Code in a browser, its extension host in Node) for the end-to-end tests in
# test/vscode/, into .cache/code-server/ (git-ignored). Everything comes from npm and Debian's apt: its plain
# `npm install` runs postinstall scripts that download prebuilt binaries, so they are skipped and their work is done
# here instead (native modules rebuilt locally, Debian's ripgrep in place of the downloaded one, the links the
# postinstall would make). Idempotent: returns at once when a complete install of this version is present.
set -euo pipefail
cd "$(dirname "$0")/../.."

VERSION=4.100.3
DIR="${SCULPT_CODE_SERVER_DIR:-$PWD/.cache/code-server}"
PKG="$DIR/node_modules/code-server"
VSCODE="$PKG/lib/vscode"
# Written last: its presence means every step below finished.
STAMP="$DIR/.complete-$VERSION"

debian_ready() {
  command -v rg >/dev/null 2>&1 && dpkg -s libkrb5-dev >/dev/null 2>&1
}

if [ -f "$STAMP" ] && [ -f "$PKG/out/node/entry.js" ] && debian_ready; then
  echo "code-server: $VERSION in ${DIR#"$PWD"/}"
  exit 0
fi

SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)
export DEBIAN_FRONTEND=noninteractive
# ripgrep: the workbench's search runs it; libkrb5-dev: the kerberos module builds against it; a compiler and
# Python for node-gyp, which builds kerberos, node-pty and the other native modules below (against the headers
# that come with Node itself, in its include/ folder, so none are downloaded).
apt_pkgs=(libkrb5-dev ripgrep)
command -v make >/dev/null 2>&1 && command -v g++ >/dev/null 2>&1 || apt_pkgs+=(build-essential)
command -v python3 >/dev/null 2>&1 || apt_pkgs+=(python3)
missing=()
for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-cache show ripgrep >/dev/null 2>&1 || "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
RG="$(command -v rg)"

# A half-finished install is not repaired piecemeal: start over (the npm cache makes the second try quick).
rm -rf "$DIR"
mkdir -p "$DIR"
echo '{ "private": true, "description": "code-server for the end-to-end tests" }' >"$DIR/package.json"

npm_quiet=(--no-audit --no-fund --loglevel=error)
echo "code-server: installing $VERSION (a few minutes the first time)"
npm install --prefix "$DIR" "${npm_quiet[@]}" --ignore-scripts --no-save "code-server@$VERSION" >/dev/null
(cd "$DIR" && npm rebuild "${npm_quiet[@]}" argon2 >/dev/null)

# The bundled VS Code: its own dependencies, Debian's ripgrep, and its native modules built for this Node.
(
  cd "$VSCODE"
  npm install "${npm_quiet[@]}" --omit=dev --ignore-scripts >/dev/null
  mkdir -p node_modules/@vscode/ripgrep/bin
  cp "$RG" node_modules/@vscode/ripgrep/bin/rg
  # node-pty's install step runs `npx node-gyp`, which would stop at npx's install prompt without a terminal.
  npm_config_yes=true npm rebuild "${npm_quiet[@]}" kerberos node-pty @parcel/watcher @vscode/spdlog native-watchdog >/dev/null
  # The links code-server's postinstall makes.
  ln -sfn node_modules node_modules.asar
  ln -sfn code-linux.sh bin/remote-cli/code-server
  ln -sfn browser-linux.sh bin/helpers/browser.sh
  cd extensions
  npm install "${npm_quiet[@]}" --omit=dev --ignore-scripts >/dev/null
)

# The rebuilt native modules must load in this Node, or the server fails later in ways that are hard to read.
(cd "$VSCODE" && node -e "for (const m of ['kerberos', 'node-pty', '@vscode/spdlog', 'native-watchdog']) require(m)")
(cd "$DIR" && node -e "require('argon2')")
version="$(node -p "require('$PKG/package.json').version")"
if [ "$version" != "$VERSION" ]; then
  echo "code-server: expected $VERSION, got '$version'" >&2
  exit 1
fi
touch "$STAMP"
echo "code-server: $VERSION installed in ${DIR#"$PWD"/}"
