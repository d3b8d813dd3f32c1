# Shared by scripts/test.sh and scripts/train.sh: installing what bitgrad needs on Debian/Ubuntu.

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# True when the Vulkan loader and at least one driver manifest are installed. (grep without -q
# reads all of ldconfig's output, so pipefail never sees a SIGPIPE.)
have_vulkan() {
    ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1' >/dev/null &&
        { compgen -G '/usr/share/vulkan/icd.d/*.json' >/dev/null || compgen -G '/etc/vulkan/icd.d/*.json' >/dev/null; }
}

# Installs the given Debian packages, if any.
apt_install() {
    [ $# -gt 0 ] || return 0
    echo "== installing $*"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Packages for a software Vulkan device (lavapipe), when no Vulkan device is present.
vulkan_packages() { have_vulkan || echo mesa-vulkan-drivers libvulkan1; }

# Mesa writes warnings without a runtime directory.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
