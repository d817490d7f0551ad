#!/usr/bin/env bash
# The test command (README, CI): installs what it needs, checks formatting, lints and doc links,
# prints
# the adapter the GPU tests run on, and runs the whole suite on it. Under CI=true a GPU test
# that finds no adapter fails; WGOPTIM_ALLOW_NO_GPU=1 (outside CI only) lets them skip.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

# Pin the Vulkan backend so a missing driver fails loudly instead of falling back to GL.
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
export NODEVICE_SELECT=1   # silences Mesa's harmless XDG_RUNTIME_DIR warning

cargo fmt --all -- --check
cargo clippy --release --all-targets --quiet -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet
cargo build --release --all-targets --quiet
if ! ./target/release/wgoptim info; then
    if [ "${CI:-}" = "true" ] || [ "${WGOPTIM_ALLOW_NO_GPU:-}" != "1" ]; then
        echo "test: no GPU adapter for WGPU_BACKEND=$WGPU_BACKEND" >&2
        exit 1
    fi
fi
cargo test --release
