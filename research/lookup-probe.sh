#!/usr/bin/env bash
# Can a model look a value up by its key in context? Trains a model folder on text-only
# look-up conversations with one-letter keys and values (each a single token of the miniature's
# tokenizer), eight pairs and four questions each:
#   USER: Remember: "o" is "z". "r" is "q". ... What is "f"?   ASSISTANT: it is "d".
# Copying one of the shown values at random gives the loss floor `research/copy-floor.sh` prints
# for the corpus (0.238 per supervised token); only a model that finds the key's own value gets
# below it. Watch `OUT/run/steps.jsonl`.
# FORMAT=adjacent writes each pair as one quoted "k v" (the value two tokens after its key
# instead of four) and answers with the pair: USER: Remember: "o z" "r q" ... What goes with
# "f"?  ASSISTANT: "f d".
# FORMAT=mirrored keeps the spaced pairs and answers with the whole pair, so the value sits as
# far after the key in the answer as in the context, as a label does after its picture in an
# LCL episode: ... What is "f"?  ASSISTANT: "f" is "d".
# Run from the repository root (python3's standard library writes the corpus):
#   bash research/lookup-probe.sh MODEL OUT [steps] [batch] [lr]
set -euo pipefail
MODEL="${1:?model folder}"
OUT="${2:?run folder}"
STEPS="${3:-2500}"
BATCH="${4:-8}"
LR="${5:-1e-3}"
FORMAT="${FORMAT:-spaced}"
mkdir -p "$OUT"
python3 - "$OUT/lookup.json" "$FORMAT" <<'PY'
import json, random, sys
seeds = {"spaced": 11, "adjacent": 13, "mirrored": 17}
if sys.argv[2] not in seeds:
    sys.exit(f"FORMAT must be one of {', '.join(seeds)}, not {sys.argv[2]!r}")
adjacent = sys.argv[2] == "adjacent"
rng = random.Random(seeds[sys.argv[2]])
letters = "abcdefghijklmnopqrstuvwxyz"
conversations = []
for _ in range(20000):
    keys = rng.sample(letters, 8)
    values = [rng.choice(letters) for _ in keys]
    if adjacent:
        intro = "Remember: " + " ".join(f'"{k} {v}"' for k, v in zip(keys, values)) + ". "
        ask, answer = 'What goes with "{k}"?', '"{k} {v}".'
    else:
        intro = "Remember: " + " ".join(f'"{k}" is "{v}".' for k, v in zip(keys, values)) + " "
        ask = 'What is "{k}"?'
        answer = '"{k}" is "{v}".' if sys.argv[2] == "mirrored" else 'it is "{v}".'
    turns = []
    for n, q in enumerate(rng.sample(range(8), 4)):
        turns += [{"from": "human", "value": (intro if n == 0 else "") + ask.format(k=keys[q])},
                  {"from": "gpt", "value": answer.format(k=keys[q], v=values[q])}]
    conversations.append({"id": None, "image": None, "conversations": turns})
json.dump(conversations, open(sys.argv[1], "w"))
PY
bash "$(dirname "$0")/train-conversations.sh" "$MODEL" "$OUT/lookup.json" "$OUT" lookup "$STEPS" "$BATCH" "$LR"
