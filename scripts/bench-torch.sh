#!/usr/bin/env bash
# The PyTorch side of `lcl bench`: what people run today, PyTorch from PyPI (a pinned current
# release, with its MKL/oneDNN CPU kernels) and transformers 5.x (SDPA attention), in
# <repo>/.bench-venv (built on first use with the machine's python3; PyPI's Linux torch
# brings its CUDA libraries, about 3 GB), then runs scripts/bench_torch.py with the
# arguments. The fixtures keep the original's transformers 4.29 in their own venv
# (tests/fixtures/make-fixtures.sh).
#   bash scripts/bench-torch.sh --item matmul --threads 2
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
VENV="$ROOT/.bench-venv"
TORCH="torch==2.15.0"
TRANSFORMERS="transformers==5.24.0"

if [ ! -f "$VENV/.ready-$TORCH-$TRANSFORMERS" ]; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    echo "bench-torch.sh: installing $TORCH and $TRANSFORMERS into $VENV (once)" >&2
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "$TORCH" "$TRANSFORMERS" "numpy==2.3.5" "safetensors==0.8.0" >&2
    touch "$VENV/.ready-$TORCH-$TRANSFORMERS"
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
exec "$VENV/bin/python" "$HERE/bench_torch.py" "$@"
