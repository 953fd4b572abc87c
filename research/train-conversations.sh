#!/usr/bin/env bash
# Trains a model folder on one conversation file (the probes' shared last step):
# writes OUT/NAME.toml (strategy "instructions") and runs `cargo xtask train` into
# OUT/run, stopping after STEPS optimiser steps. BACKEND (default flex) picks the backend;
# EPOCHS (default 1) passes over the file set the length of the cosine schedule; IMAGES (default
# OUT) is the folder the conversations' pictures are relative to.
#   bash research/train-conversations.sh MODEL CONVERSATIONS.json OUT NAME STEPS BATCH LR
set -euo pipefail
MODEL="$1" FILE="$2" OUT="$3" NAME="$4" STEPS="$5" BATCH="$6" LR="$7"
cat > "$OUT/$NAME.toml" <<TOML
[model]
base = "$MODEL"
[sampler]
strategy = "instructions"
[[mix.sources]]
file = "$FILE"
images = "${IMAGES:-$OUT}"
[training]
epochs = ${EPOCHS:-1}
main_epochs = 0
batch_size = $BATCH
learning_rate = $LR
checkpoint_every = 100
TOML
cargo xtask train --backend "${BACKEND:-flex}" --config "$OUT/$NAME.toml" --out "$OUT/run" --stop-after "$STEPS"
