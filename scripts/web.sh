#!/usr/bin/env bash
# bitgrad in the browser (wasm32 + WebGPU). Installs what it needs on Debian/Ubuntu.
#   bash scripts/web.sh build        the demo's data subset, the wasm build and its JS bindings (web/pkg)
#   bash scripts/web.sh serve [PORT] serves web/ at http://localhost:PORT/ (default 8000)
#   bash scripts/web.sh test         build, then the kernel tests in headless Chromium
#                                    (wasm-bindgen-test) and the page's end-to-end check (Playwright)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
root=$PWD
native_cargo=$(command -v cargo)
wasm_bindgen_version=$(sed -n 's/^wasm-bindgen = "=\(.*\)"$/\1/p' web/Cargo.toml)

missing_packages() {
    local p
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done
}

# The rustup toolchain has no wasm32 standard library; Debian's rustc-web builds it from source.
# Warnings fail the build, as clippy -D warnings does natively (the wasm-only code paths).
wasm_cargo() {
    PATH=/usr/bin:$PATH RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$root/target/wasm" RUSTFLAGS=-Dwarnings \
        /usr/bin/cargo "$1" --release --locked --manifest-path web/Cargo.toml --target wasm32-unknown-unknown \
        -Zbuild-std=std,panic_abort "${@:2}"
}

install_tools() {
    local data
    data=$([ -d /usr/share/datasets/fashion-mnist ] || echo dataset-fashion-mnist)
    # shellcheck disable=SC2046
    apt_install $(missing_packages rustc-web cargo-web rust-web-src lld-22 "$@") $data
    if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $wasm_bindgen_version" ]; then
        echo "== installing wasm-bindgen-cli $wasm_bindgen_version"
        "$native_cargo" install --quiet wasm-bindgen-cli --version "$wasm_bindgen_version"
    fi
}

build() {
    if [ ! -f web/data/t10k-labels-idx1-ubyte.gz ]; then
        echo "== the demo's Fashion-MNIST subset (web/data)"
        "$native_cargo" run --locked --quiet --example web_data
    fi
    echo "== wasm build"
    wasm_cargo build
    wasm-bindgen --target web --out-dir web/pkg target/wasm/wasm32-unknown-unknown/release/bitgrad_web.wasm
    echo "web/pkg/bitgrad_web_bg.wasm: $(stat -c %s web/pkg/bitgrad_web_bg.wasm) bytes"
}

case "${1:-}" in
    build)
        install_tools
        build
        ;;
    serve)
        command -v node >/dev/null || apt_install nodejs
        [ -f web/pkg/bitgrad_web.js ] || { echo "run \`bash scripts/web.sh build\` first" >&2; exit 1; }
        exec node web/e2e/serve.mjs "${2:-8000}"
        ;;
    test)
        # shellcheck disable=SC2046
        install_tools chromium chromium-driver $(command -v npm >/dev/null || echo nodejs npm)
        build
        echo "== kernel tests in headless Chromium (WebGPU)"
        # The runner reads web/webdriver.json (Chromium's flags) from the package directory.
        CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner CHROMEDRIVER=/usr/bin/chromedriver \
            WASM_BINDGEN_TEST_TIMEOUT=600 wasm_cargo test
        echo "== end-to-end check of the page (Playwright)"
        (cd web && npm ci --no-audit --no-fund --loglevel=error)
        node web/e2e/check.mjs
        ;;
    *)
        echo "usage: bash scripts/web.sh build | serve [PORT] | test" >&2
        exit 2
        ;;
esac
