#!/usr/bin/env bash
# Can a model copy by content (an induction head), not by position? Trains a model folder on
# text-only conversations that show a few invented words and ask for them in another order:
#   USER: Words: "casjn" "qlexgi" ... "ylsjvks". Say them in another order.
#   ASSISTANT: "casjn" "qux" ... "qlexgi".
# The answer's order is random, so a word's first letter can only be guessed among the words
# not said yet, but every later letter follows from finding that first letter in the question
# and copying what comes after it there: the look-up an LCL answer needs to copy its label.
# Copying by position (what `copy-probe.sh` taught) cannot do it. Watch `OUT/run/steps.jsonl`
# against the two levels (per supervised token, with the model's tokenizer) it prints first and
# keeps in OUT/levels.txt: knowing which letter pieces were shown but not their order, and the
# floor of perfect copying, where only each word's start is a guess among the words not said.
# Run from the repository root (scripts/induction-corpus.sh writes the corpus):
#   bash research/induction-probe.sh MODEL OUT [steps] [batch] [lr]
# WORDS=MIN-MAX words per conversation (default 8-8), LETTERS=MIN-MAX letters per word
# (default 3-8), SEED (default 23) of the 40,000 conversations (passed to induction-corpus.sh).
set -euo pipefail
MODEL="${1:?model folder}"
OUT="${2:?run folder}"
STEPS="${3:-5000}"
BATCH="${4:-8}"
LR="${5:-1e-3}"
mkdir -p "$OUT"
bash "$(dirname "$0")/../scripts/induction-corpus.sh" "$OUT/induction.json"
PY="$(bash "$(dirname "$0")/analysis-python.sh")"
"$PY" - "$OUT/induction.json" "$MODEL/tokenizer.model" <<'PY' | tee "$OUT/levels.txt"
import json, math, sys
from collections import Counter

import sentencepiece

path, model = sys.argv[1:]
tokenizer = sentencepiece.SentencePieceProcessor(model_file=model)
tokens, floor, letters_known = 0, 0.0, 0.0
for conversation in json.load(open(path))[:2000]:
    answer = conversation["conversations"][1]["value"]
    words = answer.split('"')[1::2]
    shown = Counter(piece for w in words for piece in tokenizer.encode(w, out_type=str))
    shown_total = sum(shown.values())
    pieces = tokenizer.encode(answer, out_type=str)
    tokens += len(pieces) + 1  # and its </s>
    floor += math.log(math.factorial(len(words)))
    letters_known -= sum(math.log(shown[p] / shown_total) for p in pieces if p in shown)
print(f"{path}: letters known but not their order {letters_known / tokens:.3f}, "
      f"copying floor {floor / tokens:.3f} per supervised token")
PY
bash "$(dirname "$0")/train-conversations.sh" "$MODEL" "$OUT/induction.json" "$OUT" induction "$STEPS" "$BATCH" "$LR"
