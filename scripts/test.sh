#!/usr/bin/env bash
# The test command: installs a software Vulkan driver when no Vulkan device is present, then
# runs formatting, lints and every test with the GPU tests executing for real (on lavapipe when
# there is no GPU). Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

have_vulkan() {
    ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1' &&
        ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json >/dev/null 2>&1
}

if ! have_vulkan; then
    echo "== no Vulkan driver found: installing mesa-vulkan-drivers libvulkan1 (lavapipe)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi

# Vulkan only: wgpu's GL path on llvmpipe compiles shaders far more slowly and adds nothing.
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
# A missing adapter fails GPU tests instead of skipping them.
export BITGRAD_REQUIRE_GPU=1
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --locked --all-targets
cargo test --locked --doc
