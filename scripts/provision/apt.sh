# Sourced by the provisioning scripts: apt_install PACKAGE... installs Debian packages without recommends,
# through sudo when not root, refreshing the package lists only when apt does not know the first package yet
# (a fresh image has empty lists).
apt_install() {
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "provision: not root and no sudo; install these Debian packages: $*" >&2
      return 1
    fi
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-cache show "$1" >/dev/null 2>&1 || "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
