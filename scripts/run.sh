#!/usr/bin/env bash
# The main job: every kernel variant against the CPU reference on this machine's GPU (or
# lavapipe), then whatever `wgoptim` subcommand you pass instead (e.g. `scripts/run.sh info`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
export NODEVICE_SELECT=1
cargo build --release --features cli --quiet
if [ "$#" -eq 0 ]; then
    set -- verify
fi
exec ./target/release/wgoptim "$@"
