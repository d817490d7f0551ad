#!/usr/bin/env bash
# Makes sure this machine can run the GPU path: a Vulkan driver (Mesa's lavapipe when there is
# no GPU) and a Rust toolchain. Safe to run again; installs only what is missing.
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

if ! command -v cargo >/dev/null; then
    echo "setup: cargo not found; install a Rust toolchain (rustup) first" >&2
    exit 1
fi
