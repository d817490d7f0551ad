#!/usr/bin/env bash
# The test command (README, CI): installs what it needs, checks formatting, lints and doc links,
# checks that the library alone stays lean, prints the adapter the GPU tests run on, runs the
# whole suite on it with every feature (MPI ranks launched by mpirun, the playground driven by
# headless Chromium), and runs the one-command GPU report on this machine's adapter. Under CI=true a GPU test that finds no adapter fails; WGOPTIM_ALLOW_NO_GPU=1
# (outside CI only) lets them skip.
set -euo pipefail
cd "$(dirname "$0")/.."
WGOPTIM_SETUP_MPI=1 WGOPTIM_SETUP_BROWSER=1 scripts/setup.sh

# Pin the Vulkan backend so a missing driver fails loudly instead of falling back to GL.
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
export NODEVICE_SELECT=1   # silences Mesa's harmless XDG_RUNTIME_DIR warning
# Tuned kernel shapes go to a cache of this checkout's own, not the user's.
export WGOPTIM_CACHE_DIR="${WGOPTIM_CACHE_DIR:-$PWD/target/wgoptim-cache}"

cargo fmt --all -- --check
cargo clippy --release --all-targets --all-features --quiet -- -D warnings
cargo clippy --release --lib --no-default-features --quiet -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --release --no-deps --all-features --quiet
scripts/check-lean.sh
cargo build --release --all-targets --all-features --quiet
if ! ./target/release/wgoptim info; then
    if [ "${CI:-}" = "true" ] || [ "${WGOPTIM_ALLOW_NO_GPU:-}" != "1" ]; then
        echo "test: no GPU adapter for WGPU_BACKEND=$WGPU_BACKEND" >&2
        exit 1
    fi
fi
cargo test --release --all-features
# The GPU report end to end (small sizes on a CPU adapter); it must produce both reports.
rm -rf target/gpu-report
scripts/gpu-report.sh target/gpu-report
test -s target/gpu-report/report.md && test -s target/gpu-report/report.json
grep -q '## Step time' target/gpu-report/report.md
