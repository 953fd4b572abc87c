#!/usr/bin/env bash
# The GPU check: the transformers-parity fixtures and the real model's shapes on a CUDA GPU, in
# one prepared run. Two steps, because a GPU machine often has no network and no Rust:
#
#   bash scripts/gpu-check.sh pack          (here: build and package, target/gpu-check/, < 64 MiB)
#   bash scripts/gpu-check.sh run           (there, from the repository root: unpack, run, report)
#   bash scripts/gpu-check.sh run --cpu     (anywhere: the same run on the CPU, small items only)
#
# pack builds a stripped release `lcl` with the cuda and wgpu backends (`cargo xtask build`
# prepares LLVM 23 from PyPI for the cuda build), compresses it with xz, and adds libdevice
# (the CUDA math bitcode the kernel compiler links, from PyPI's nvidia-cuda-nvcc-cu12) for
# machines without a CUDA toolkit. run prints, and writes to $OUT (or target/gpu-check/out):
# the parity checks on cuda (and on wgpu where a Vulkan driver is found), then `lcl bench` at
# the real shapes in bf16 with time, tokens/s and MFU against the GPU's dense bf16 peak.
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE="${BUNDLE:-target/gpu-check}"
MODE="${1:-}"
shift || true

pack() {
    mkdir -p "$BUNDLE"
    CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}" cargo xtask build --backend cuda,wgpu
    local binary="${CARGO_TARGET_DIR:-target}/release/lcl"
    strip -o "$BUNDLE/lcl" "$binary"
    xz -9e -T2 -f "$BUNDLE/lcl"
    if [ ! -f "$BUNDLE/cuda/nvvm/libdevice/libdevice.10.bc" ]; then
        local wheels
        wheels="$(mktemp -d)"
        python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$wheels" \
            "nvidia-cuda-nvcc-cu12==12.9.86"
        python3 - "$wheels"/*.whl "$BUNDLE/cuda" <<'PY'
import sys, zipfile, pathlib
wheel, dest = sys.argv[1], pathlib.Path(sys.argv[2])
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.endswith("nvvm/libdevice/libdevice.10.bc"):
            target = dest / "nvvm/libdevice/libdevice.10.bc"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(z.read(name))
PY
        rm -rf "$wheels"
    fi
    du -ch "$BUNDLE"/lcl.xz "$BUNDLE"/cuda | tail -n 1
    local total
    total=$(du -cb "$BUNDLE"/lcl.xz "$BUNDLE"/cuda | tail -n 1 | cut -f1)
    local tree
    tree=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -n 1 | cut -f1)
    echo "bundle $((total >> 20)) MiB + working tree $((tree >> 20)) MiB (the device tool carries 64 MiB)"
    if [ $((total + tree)) -gt $((64 << 20)) ]; then
        echo "gpu-check: over 64 MiB" >&2
        exit 1
    fi
}

# Dense bf16 peak TFLOP/s and memory bandwidth (TB/s) by GPU name, for MFU and bandwidth use.
peak_of() {
    case "$1" in
        *H200*) echo "989 4.8" ;;
        *H100*SXM*|*H100\ 80GB\ HBM3*) echo "989 3.35" ;;
        *H100*) echo "756 2.0" ;;
        *A100*) echo "312 2.0" ;;
        *L40S*) echo "362 0.864" ;;
        *4090*) echo "165 1.0" ;;
        *) echo "0 0" ;;
    esac
}

run_check() {
    local cpu=0
    [ "${1:-}" = "--cpu" ] && cpu=1
    local out="${OUT:-$BUNDLE/out}"
    mkdir -p "$out"
    local lcl
    if [ "$cpu" = 1 ]; then
        # The CPU fallback: a flex build of this checkout.
        cargo xtask build --backend flex >&2
        lcl="${CARGO_TARGET_DIR:-target}/release/lcl"
        export LCL_DEVICE=flex
    else
        lcl="/tmp/lcl-gpu-check"
        xz -dc "$BUNDLE/lcl.xz" > "$lcl"
        chmod +x "$lcl"
        if [ -z "${CUDA_PATH:-}" ] && [ ! -f /usr/local/cuda/nvvm/libdevice/libdevice.10.bc ]; then
            export CUDA_PATH="$PWD/$BUNDLE/cuda"
        fi
        export LCL_DEVICE=cuda
        nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
            | tee "$out/gpu.txt"
    fi
    local name peak bandwidth
    name="$( [ -f "$out/gpu.txt" ] && cut -d, -f1 "$out/gpu.txt" || echo cpu)"
    read -r peak bandwidth <<< "$(peak_of "$name")"
    echo "## parity ($LCL_DEVICE)"
    "$lcl" parity --json "$out/parity-$LCL_DEVICE.json" | tee "$out/parity-$LCL_DEVICE.md"
    if [ "$cpu" = 0 ] && ldconfig -p 2>/dev/null | grep -q libvulkan; then
        echo "## parity (wgpu)"
        LCL_DEVICE=wgpu "$lcl" parity --json "$out/parity-wgpu.json" \
            | tee "$out/parity-wgpu.md" || echo "wgpu parity failed (see above)"
    fi
    local items
    if [ "$cpu" = 1 ]; then
        items="matmul,clip-b1,tiny-train-step,tiny-generate-reuse,tiny-eval-reuse"
    else
        items="matmul,clip-b1,clip-b16,llama-layer-prefill,llama-layer-decode,llama-7b-prefill,llama-7b-decode,llama-7b-train-step,llama-7b-lora-step,tiny-eval-reuse"
    fi
    echo "## bench ($LCL_DEVICE, bf16 where the device computes in it)"
    "$lcl" bench --no-torch --items "$items" --dtype "$( [ "$cpu" = 1 ] && echo f32 || echo bf16)" \
        --min-runs 2 --min-seconds 1 --peak-tflops "$peak" --peak-bandwidth "$bandwidth" \
        --out "$out/bench.json" | tee "$out/bench.md"
}

case "$MODE" in
    pack) pack ;;
    run) run_check "$@" ;;
    *) sed -n 2,15p "$0"; exit 2 ;;
esac
