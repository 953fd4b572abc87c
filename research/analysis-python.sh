#!/usr/bin/env bash
# Prints a python3 that can import sentencepiece (the probes' token counts), building
# <repo>/.analysis-venv with it when the system python lacks it. Used by copy-floor.sh and
# induction-probe.sh:  PY="$(bash research/analysis-python.sh)"
set -euo pipefail
if python3 -c 'import sentencepiece' 2>/dev/null; then
    echo python3
    exit
fi
VENV="$(cd "$(dirname "$0")/.." && pwd)/.analysis-venv"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install --quiet --disable-pip-version-check sentencepiece >&2
fi
echo "$VENV/bin/python"
