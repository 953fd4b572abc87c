#!/usr/bin/env bash
# Does in-context copying emerge in a model trained from scratch? Trains a model folder (by
# default the fresh mini LLaMA of `lcl init-model`) on text-only copy conversations only:
#   USER: Copy "qzl" "abrt" ... (8 random lowercase strings of 1-10 letters).
#   ASSISTANT: "qzl" "abrt" ... .
# Every answer letter is predictable by copying and by nothing else, so the loss falls well
# below the no-copy level (about 2.8 here) once copying is learnt. Watch `OUT/steps.jsonl`.
# Run from the repository root (python3's standard library writes the corpus):
#   bash research/copy-probe.sh models/mini-init runs/copy-probe [steps] [batch] [lr]
# STRINGS=MIN-MAX draws the number of strings per conversation uniformly (default 8-8); a
# probe run with STRINGS=24-24 and a tiny lr (1e-12) measures whether a model's copying holds
# beyond the lengths it was trained on.
set -euo pipefail
MODEL="${1:?model folder (e.g. models/mini-init)}"
OUT="${2:?run folder}"
STEPS="${3:-300}"
BATCH="${4:-16}"
LR="${5:-3e-3}"
STRINGS="${STRINGS:-8-8}"
mkdir -p "$OUT"
python3 - "$OUT/copy.json" "$STRINGS" <<'PY'
import json, random, sys
rng = random.Random(2)
fewest, most = (int(n) for n in sys.argv[2].split("-"))
def word():
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(1, 10)))
conversations = []
for _ in range(20000):
    count = fewest if fewest == most else rng.randint(fewest, most)  # 8-8: the first runs' corpus
    quoted = " ".join('"%s"' % word() for _ in range(count))
    conversations.append({"id": None, "image": None, "conversations": [
        {"from": "human", "value": "Copy " + quoted + "."},
        {"from": "gpt", "value": quoted + "."}]})
json.dump(conversations, open(sys.argv[1], "w"))
PY
bash "$(dirname "$0")/train-conversations.sh" "$MODEL" "$OUT/copy.json" "$OUT" copy "$STEPS" "$BATCH" "$LR"
