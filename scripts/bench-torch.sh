#!/usr/bin/env bash
# The PyTorch side of `lcl bench`: builds <repo>/.bench-venv on Debian's CPU torch (installing
# python3-torch, python3-venv and OpenBLAS when missing, as root) with transformers 4.29 (the
# version the original LCL/Shikra code pins), then runs scripts/bench_torch.py with the
# arguments. Debian's torch calls the system BLAS, by default the slow reference one; the
# benchmark loads OpenBLAS instead through LD_LIBRARY_PATH, and the system's choice of BLAS
# (the libblas.so.3 alternative the fixture scripts use) is left as it was.
#   bash scripts/bench-torch.sh --item matmul --threads 2
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
VENV="$ROOT/.bench-venv"
PY=/usr/bin/python3   # Debian's python (python3-torch lives in its dist-packages)

PACKAGES=(python3-torch python3-venv libopenblas0-pthread)
if ! dpkg -s "${PACKAGES[@]}" >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "bench-torch.sh: ${PACKAGES[*]} are needed; run as root once" >&2
        exit 1
    fi
    blas=$(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | sed -n 's/^Value: //p')
    lapack=$(update-alternatives --query liblapack.so.3-x86_64-linux-gnu 2>/dev/null | sed -n 's/^Value: //p')
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${PACKAGES[@]}" >&2
    [ -n "$blas" ] && update-alternatives --set libblas.so.3-x86_64-linux-gnu "$blas" >&2
    [ -n "$lapack" ] && update-alternatives --set liblapack.so.3-x86_64-linux-gnu "$lapack" >&2
fi
if [ ! -f "$VENV/.ready" ]; then
    "$PY" -m venv --system-site-packages "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "transformers==4.29.0" "tokenizers==0.13.3" "huggingface_hub==0.36.2" \
        "numpy==1.24.2" >&2
    touch "$VENV/.ready"
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
export LD_LIBRARY_PATH="/usr/lib/x86_64-linux-gnu/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$VENV/bin/python" "$HERE/bench_torch.py" "$@"
