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
echo "== cargo doc (no warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps
echo "== TensorBoard's own reader loads the event files of the TensorBoard callback"
# A venv kept under target/ (pip reuses it on the next run); Debian's python3 needs python3-venv.
tb_venv=target/tensorboard-venv
if [ ! -x "$tb_venv/bin/pip" ]; then
    python3 -m venv --clear "$tb_venv" 2>/dev/null || { apt_install python3-venv && python3 -m venv --clear "$tb_venv"; }
fi
"$tb_venv/bin/python" -m pip install -q --disable-pip-version-check tensorboard==2.20.0
tb_dir=$(mktemp -d)
trap 'rm -rf "$tb_dir"' EXIT
BITGRAD_TENSORBOARD_DIR="$tb_dir" cargo test --locked --test callbacks -- --ignored --exact write_event_files_for_tensorboard
"$tb_venv/bin/python" - "$tb_dir" <<'PY'
import json, math, os, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

root = sys.argv[1]
with open(os.path.join(root, "expected.json")) as f:
    expected = json.load(f)
for run, tags in expected.items():
    acc = EventAccumulator(os.path.join(root, "logs", run))
    acc.Reload()
    got = sorted(acc.Tags()["scalars"])
    assert got == sorted(tags), f"{run}: scalar tags {got}, expected {sorted(tags)}"
    for tag, want in tags.items():
        have = [(e.step, e.value) for e in acc.Scalars(tag)]
        assert [s for s, _ in have] == [s for s, _ in want], f"{run}/{tag}: steps {have}, expected {want}"
        for (step, v), (_, w) in zip(have, want):
            assert math.isclose(v, w, rel_tol=1e-6, abs_tol=1e-12), f"{run}/{tag} at step {step}: {v}, expected {w}"
    print(f"TensorBoard reads {run}: {len(tags)} tags, {sum(len(w) for w in tags.values())} values")
PY
echo "== the browser build: wasm32 + WebGPU in headless Chromium"
bash scripts/web.sh test
