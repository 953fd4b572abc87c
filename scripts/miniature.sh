#!/usr/bin/env bash
# Builds the miniature of the paper's pipeline with the project's own commands: the two-world
# data set, a mini CLIP trained contrastively on the real world, class neighbours, a fresh
# mini LLaMA taught to caption (the vanilla model), then the LCL model's chain from the shipped
# induction weights (checkpoints/mini/induction; how they were grown is in
# research/miniature-log.md): the recognition stage, the decoder grown to six layers, LCL
# interleaved with captions, LCL with one-letter names, names of growing length, then
# [2-way-weight] (configs/mini/lcl-2way-weight.toml); the f16 export of both models into
# checkpoints/mini (what the repository ships) and the default evaluation of them. Run from
# the repository root:
#   bash scripts/miniature.sh            (BACKEND=flex by default; STAGES to run a subset)
set -euo pipefail
BACKEND="${BACKEND:-flex}"
STAGES="${STAGES:-world clip neighbors init caption recognition grow mix letters names lcl export eval}"
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
if stage recognition; then
    WORDS=2-3 LETTERS=6-12 SEED=53 COUNT=10400 bash scripts/induction-corpus.sh \
        world/text/induction.json
    lcl train --config configs/mini/recognition.toml --model checkpoints/mini/induction \
        --out runs/mini-recognition
fi
if stage grow; then
    lcl export-model --model runs/mini-recognition/model --depth 6 --dtype f32 \
        --out runs/mini-deep --vision-out runs/mini-deep-clip
fi
if stage mix; then
    lcl train --config configs/mini/link-mix.toml --model runs/mini-deep --out runs/mini-deep-mix \
        --stop-after 2000
    lcl export-model --model runs/mini-deep --weights runs/mini-deep-mix/checkpoint/model-2000.bpk \
        --dtype f32 --out runs/mini-deep-2000 --vision-out runs/mini-deep-clip
fi
if stage letters; then
    lcl train --config configs/mini/link-letters.toml --model runs/mini-deep-2000 \
        --out runs/mini-letters
    lcl export-model --model runs/mini-deep-2000 --weights runs/mini-letters/model.bpk \
        --dtype f32 --out runs/mini-names-1 --vision-out runs/mini-deep-clip
fi
if stage names; then
    # invented names of up to 4, 8, then 12 letters, each stage from the one before
    previous=1
    for spec in 4:1 8:1 12:2; do
        letters="${spec%%:*}"
        lcl train --config configs/mini/link-letters.toml --model "runs/mini-names-$previous" \
            --label-letters "$letters" --epochs "${spec##*:}" --out "runs/mini-names-$letters-run"
        lcl export-model --model "runs/mini-names-$previous" \
            --weights "runs/mini-names-$letters-run/model.bpk" --dtype f32 \
            --out "runs/mini-names-$letters" --vision-out runs/mini-deep-clip
        previous="$letters"
    done
fi
if stage lcl; then
    lcl train --config configs/mini/lcl-2way-weight.toml --model runs/mini-names-12 \
        --out runs/mini-lcl
fi
if stage export; then
    lcl export-model --model runs/mini-caption/model --dtype f16 \
        --out checkpoints/mini/vanilla --vision-out checkpoints/mini/clip
    lcl export-model --model runs/mini-names-12 --weights runs/mini-lcl/model.bpk --dtype f16 \
        --out checkpoints/mini/lcl --vision-out checkpoints/mini/clip
fi
if stage eval; then
    lcl eval --data world --out runs/eval-default
fi
