#!/usr/bin/env bash
# Builds the miniature of the paper's pipeline from nothing, with the project's own commands:
# the two-world data set, a mini CLIP trained contrastively on the real world, class
# neighbours, a fresh mini LLaMA taught to caption (the vanilla model), the LCL fine-tune,
# the f16 export of both into checkpoints/mini (what the repository ships) and the default
# evaluation of them. Run from the repository root:
#   bash scripts/miniature.sh            (BACKEND=flex by default; STAGES to run a subset)
set -euo pipefail
BACKEND="${BACKEND:-flex}"
STAGES="${STAGES:-world clip neighbors init caption lcl export eval}"
lcl() { cargo xtask "$@" --backend "$BACKEND"; }
stage() { [[ " $STAGES " == *" $1 "* ]]; }

if stage world; then
    lcl gen-world --seed 42 --out world
fi
if stage clip; then
    lcl train-clip --config configs/mini/clip.json --tokenizer tests/fixtures/tiny-clip-text \
        --data world/real/images --split world/real/heldout-classes.txt --steps 1500 \
        --out models/mini-clip
fi
if stage neighbors; then
    lcl neighbors --clip models/mini-clip --data world/real/images \
        --split world/real/heldout-classes.txt --out world/real/classes.jsonl
fi
if stage init; then
    lcl init-model --llm configs/mini/llama.json --vision models/mini-clip \
        --tokenizer tests/fixtures/tiny-lcl --out models/mini-init
fi
if stage caption; then
    lcl train --config configs/mini/caption.toml --model models/mini-init --out runs/mini-caption
fi
if stage lcl; then
    lcl train --config configs/mini/lcl-2way-weight.toml --model runs/mini-caption/model \
        --out runs/mini-lcl
fi
if stage export; then
    lcl export-model --model runs/mini-caption/model --dtype f16 \
        --out checkpoints/mini/vanilla --vision-out checkpoints/mini/clip
    lcl export-model --model runs/mini-caption/model --weights runs/mini-lcl/model.bpk \
        --dtype f16 --out checkpoints/mini/lcl --vision-out checkpoints/mini/clip
fi
if stage eval; then
    lcl eval --data world --out runs/eval-default
fi
