#!/usr/bin/env bash
# What `cargo add wgoptim` brings: a throw-away program that depends on the library with
# default features off, and its `cargo tree`. Fails if any crate that only the command line,
# the plots, the demos, the playground, MPI or .npy I/O need is in it; prints the tree's
# direct dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/src"
cat >"$dir/Cargo.toml" <<TOML
[package]
name = "lean-check"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
wgoptim = { path = "$root", default-features = false }

[workspace]
TOML
echo 'fn main() { let _ = wgoptim::Adam::adamw(); }' >"$dir/src/main.rs"
cp Cargo.lock "$dir/Cargo.lock"
tree=$(cargo tree --manifest-path "$dir/Cargo.toml" -e normal --prefix none --offline 2>/dev/null ||
    cargo tree --manifest-path "$dir/Cargo.toml" -e normal --prefix none)
banned="clap indicatif plotters contour flate2 ndarray ndarray-npy rand rand_distr criterion tiny_http mpi"
found=""
for crate in $banned; do
    if grep -q "^$crate v" <<<"$tree"; then
        found="$found $crate"
    fi
done
echo "lean check: wgoptim's direct dependencies with default features off:"
cargo tree --manifest-path "$dir/Cargo.toml" -e normal --depth 2 --offline 2>/dev/null | sed -n '3,$p' | grep -v '^│   ' | sed 's/^/  /' || true
echo "lean check: $(sort -u <<<"$tree" | grep -c ' v') crates in all"
if [ -n "$found" ]; then
    echo "lean check: FAILED, the library pulls in:$found" >&2
    exit 1
fi
echo "lean check: none of [$banned]"
