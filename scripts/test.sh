#!/usr/bin/env bash
# The test command: installs a software Vulkan driver when no Vulkan device is present, then
# runs formatting, lints and every test with the GPU tests executing for real (on lavapipe when
# there is no GPU), then the browser build's tests in headless Chromium (scripts/web.sh test,
# which installs its own toolchain). Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib.sh
# shellcheck disable=SC2046
apt_install $(vulkan_packages)

# Vulkan only: wgpu's GL path on llvmpipe compiles shaders far more slowly and adds nothing.
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
# A missing adapter fails GPU tests instead of skipping them.
export BITGRAD_REQUIRE_GPU=1

echo "== cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path web/Cargo.toml -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
# The browser crate compiles natively too; sharing target/ reuses the main crate's dependencies.
CARGO_TARGET_DIR=target cargo clippy --manifest-path web/Cargo.toml --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --locked --all-targets
cargo test --locked --doc
echo "== the browser build: wasm32 + WebGPU in headless Chromium"
bash scripts/web.sh test
