#!/usr/bin/env bash
# One command for the first run on a machine with a real GPU: adapters, kernel-shape tuning,
# verification, the step benchmark beside the copy bandwidth and (where torch with CUDA is
# present) torch's fused optimizers on the same card, written as OUTDIR/report.md and
# OUTDIR/report.json (plus each tool's raw output).
#
#   scripts/gpu-report.sh OUTDIR           run with ./target/release/wgoptim (or $WGOPTIM_BIN)
#   scripts/gpu-report.sh --fetch-debs     here, before carrying: download the Vulkan loader
#                                          .debs into .gl/ for a machine that lacks them
#
# Build here first (cargo build --release --features cli); the GPU machine needs no Rust.
# On a CPU adapter (lavapipe) the sizes are smaller so that the whole report takes minutes.
# OUTDIR ends up with at most 8 files: info.txt, log.txt, tune.json, verify.txt, bench.json,
# torch.json, report.md, report.json.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--fetch-debs" ]; then
    mkdir -p .gl /tmp/amd64/partial
    o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
    # shellcheck disable=SC2086
    apt-get $o update -qq && (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0)
    grep -qx '/.gl/' .git/info/exclude 2>/dev/null || echo '/.gl/' >>.git/info/exclude
    ls -l .gl
    exit 0
fi

out="${1:?usage: scripts/gpu-report.sh OUTDIR | --fetch-debs}"
mkdir -p "$out"
bin="${WGOPTIM_BIN:-./target/release/wgoptim}"
if [ ! -x "$bin" ]; then
    echo "gpu-report: no binary at $bin; build it first: cargo build --release --features cli" >&2
    exit 2
fi
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}" NODEVICE_SELECT=1
start=$(date +%s)
log() { echo "[gpu-report $(($(date +%s) - start))s] $*" | tee -a "$out/log.txt" >&2; }

# 1. The Vulkan loader and driver.
if ! ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1' >/dev/null; then
    debs=("${WGOPTIM_DEBS:-.gl}"/*.deb)
    if [ -e "${debs[0]}" ]; then
        log "no libvulkan.so.1: unpacking ${#debs[@]} carried .deb files"
        for f in "${debs[@]}"; do dpkg -x "$f" /; done
        ldconfig
    else
        log "no libvulkan.so.1 and no carried .debs (run scripts/gpu-report.sh --fetch-debs here first)"
    fi
fi
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
    for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json \
        /usr/share/vulkan/icd.d/nvidia_icd.json; do
        if [ -f "$icd" ]; then
            export VK_DRIVER_FILES="$icd"
            log "Vulkan driver: $icd"
            break
        fi
    done
fi
gpu_name=""
if command -v nvidia-smi >/dev/null 2>&1; then
    gpu_name=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
    log "nvidia-smi: $gpu_name"
fi

# 2. What wgpu sees.
"$bin" info >"$out/info.txt" 2>&1
info_rc=$?
cat "$out/info.txt" >&2
if [ $info_rc -ne 0 ]; then
    log "NO ADAPTER: wgpu found no usable adapter for WGPU_BACKEND=$WGPU_BACKEND (see info.txt)"
fi
cpu_adapter=0
if grep -q '^selected: .*Cpu' "$out/info.txt"; then
    cpu_adapter=1
fi
if [ -n "$gpu_name" ] && { [ $info_rc -ne 0 ] || [ $cpu_adapter -eq 1 ]; }; then
    log "NO VULKAN DRIVER SEES THE GPU ($gpu_name): wgpu runs on a CPU adapter or none"
fi

# 3. Sizes: the issue's on a GPU, smaller on a CPU adapter.
if [ $cpu_adapter -eq 1 ]; then
    verify_size=2^18 verify_steps=10 bench_sizes=2^20,2^22 reps=5 tune_size=2^18
else
    verify_size=2^22 verify_steps=20 bench_sizes=2^24,2^26 reps=15 tune_size=""
fi
run_step() { # name, command...
    local name=$1
    shift
    log "$name: $*"
    # stderr goes to log.txt: at most 8 files, so that all of them come back from a lent machine.
    "$@" >"$out/$name" 2> >(sed "s/^/[$name] /" >>"$out/log.txt")
    local rc=$?
    log "$name: exit $rc"
    return $rc
}
if [ $info_rc -eq 0 ]; then
    tune_args=(tune --json --rounds 3)
    [ -n "$tune_size" ] && tune_args+=(--size "$tune_size")
    run_step tune.json "$bin" "${tune_args[@]}"
    run_step verify.txt "$bin" verify --size "$verify_size" --steps "$verify_steps"
    # Each kernel with f32, bf16 and int8 state, in one run (issue #9 asks for the ratios).
    run_step bench.json "$bin" bench --sizes "$bench_sizes" --reps "$reps" \
        --state-dtype f32,bf16,int8 --json
fi

# 4. torch's fused optimizers on the same card.
if command -v python3 >/dev/null 2>&1 &&
    python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    run_step torch.json python3 scripts/torch_bench.py --sizes "$bench_sizes" --reps "$reps"
else
    log "torch with CUDA not found: no torch comparison"
fi

# 5. One report.
elapsed=$(($(date +%s) - start))
if command -v python3 >/dev/null 2>&1; then
    python3 scripts/gpu_report.py "$out" "$elapsed" "$gpu_name"
else
    { echo "# wgoptim GPU report"; for f in "$out"/*.txt "$out"/*.json; do echo "## $f"; cat "$f"; done; } >"$out/report.md"
fi
log "done in ${elapsed}s: $out/report.md, $out/report.json"
