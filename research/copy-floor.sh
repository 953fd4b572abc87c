#!/usr/bin/env bash
# The loss floor of copying without looking up, for a look-up conversation file (the miniature's
# recall conversations and the like): the mean loss per supervised token of a model that knows
# every value shown in the first turn but not which key each belongs to, so it answers with one
# of them at random (weighted by how often each is shown) and gets every template token right.
# A model whose loss on the file is above this floor does not look values up by their key.
#
# Usage: research/copy-floor.sh CONVERSATIONS.json TOKENIZER.model ANSWER PAIR_REGEX [N]
#   ANSWER      the answer turn with {} for the value, e.g. 'it is "{}".'; a {k} in it stands
#               for the key the answer repeats (taken from each answer), e.g. '"{k}" is "{}".'
#   PAIR_REGEX  a Python regex whose group 1 is a value in the first turn, e.g. '" is "([a-z]+)"'
#   N           conversations read (default 2000)
# Needs python3 with sentencepiece; builds <repo>/.analysis-venv with it when missing.
set -euo pipefail
[ $# -ge 4 ] || { sed -n 2,12p "$0"; exit 2; }
PY="$(bash "$(dirname "$0")/analysis-python.sh")"
"$PY" - "$@" <<'EOF'
import json, math, re, sys

import sentencepiece

path, model, answer, pattern = sys.argv[1:5]
limit = int(sys.argv[5]) if len(sys.argv) > 5 else 2000
tokenizer = sentencepiece.SentencePieceProcessor(model_file=model)
nats, tokens = 0.0, 0
# with {k}: the answer's shape, whose group 1 is the key it repeats
key_shape = "{k}" in answer and re.compile(
    re.escape(answer).replace(re.escape("{k}"), "(.+?)", 1).replace(re.escape("{}"), ".+?"))
for conversation in json.load(open(path))[:limit]:
    turns = conversation["conversations"]
    values = re.findall(pattern, turns[0]["value"])
    if not values:
        sys.exit(f"{path}: no value matches {pattern!r} in {turns[0]['value']!r}")
    for turn in turns[1::2]:
        key = ""
        if key_shape:
            found = key_shape.fullmatch(turn["value"])
            if not found:
                sys.exit(f"{path}: answer {turn['value']!r} does not match {answer!r}")
            key = found.group(1)
        candidates = [tokenizer.encode(answer.replace("{k}", key).replace("{}", v)) for v in values]
        ids = tokenizer.encode(turn["value"])
        tokens += len(ids) + 1  # and its </s>
        alive = list(range(len(candidates)))
        for i, token in enumerate(ids):
            agreeing = [c for c in alive if len(candidates[c]) > i and candidates[c][i] == token]
            if not agreeing:
                sys.exit(f"{path}: answer {turn['value']!r} is none of {values}")
            nats -= math.log(len(agreeing) / len(alive))
            alive = agreeing
print(f"{path}: copy floor {nats / tokens:.3f} per supervised token ({tokens} tokens)")
EOF
