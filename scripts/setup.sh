#!/usr/bin/env bash
# Makes sure this machine can run the GPU path: a Vulkan driver (Mesa's lavapipe when there is
# no GPU) and a Rust toolchain; with WGOPTIM_SETUP_MPI=1 also OpenMPI and libclang for the `mpi`
# feature (the sharded optimizer), with WGOPTIM_SETUP_BROWSER=1 Chromium for the playground's
# browser tests. Safe to run again; installs only what is missing.
set -euo pipefail

have_vulkan_driver() {
    local dir
    for dir in /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d; do
        compgen -G "$dir/*.json" >/dev/null && return 0
    done
    return 1
}

if ! have_vulkan_driver || ! ldconfig -p | grep 'libvulkan\.so\.1' >/dev/null; then
    echo "setup: no Vulkan driver found; installing mesa-vulkan-drivers (lavapipe)" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers >/dev/null
fi

have_mpi() {
    command -v mpirun >/dev/null &&
        compgen -G "/usr/lib/*/openmpi/include/mpi.h" >/dev/null &&
        compgen -G "/usr/lib/llvm-*/lib/libclang.so*" >/dev/null
}

if [ "${WGOPTIM_SETUP_MPI:-}" = "1" ] && ! have_mpi; then
    echo "setup: installing OpenMPI and libclang (openmpi-bin libopenmpi-dev libclang-dev)" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends openmpi-bin libopenmpi-dev libclang-dev >/dev/null
fi

have_chromium() {
    command -v chromium >/dev/null || command -v chromium-browser >/dev/null
}

if [ "${WGOPTIM_SETUP_BROWSER:-}" = "1" ] && ! have_chromium; then
    echo "setup: installing Chromium (chromium, fonts-liberation) for the playground's browser tests" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
fi

if ! command -v cargo >/dev/null; then
    echo "setup: cargo not found; install a Rust toolchain (rustup) first" >&2
    exit 1
fi
