#!/usr/bin/env bash
# One-letter names for the evaluation suites of a generated world, to score a model trained
# with `label_letters = 1` (configs/mini/link-letters.toml): the same pictures and pairs, each
# class or concept renamed to a random letter (two classes of one episode never share one).
# Writes OUT/names-letters.txt (a class names file for `lcl test-classes --names`, held-out
# species renamed, consecutive ones different) and OUT/isekai-{pair,10}-letters.jsonl.
#   bash research/letter-names.sh WORLD OUT
#   lcl test-classes --data WORLD/real/images --names OUT/names-letters.txt --split WORLD/real/heldout-classes.txt --out OUT/heldout-letters.jsonl --context 8 --queries 4
#   lcl eval --model M --suite OUT/isekai-pair-letters.jsonl --images WORLD --score likelihood ...
set -euo pipefail
[ $# -eq 2 ] || { sed -n 2,10p "$0"; exit 2; }
WORLD="$1" OUT="$2"
mkdir -p "$OUT"
python3 - "$WORLD" "$OUT" <<'PY'
import json, random, sys
world, out = sys.argv[1], sys.argv[2]
letters = "abcdefghijklmnopqrstuvwxyz"
rng = random.Random(3)
held = [l.strip() for l in open(f"{world}/real/heldout-classes.txt") if l.strip()]
names, previous = {}, None
for class_id in held:
    previous = names[class_id] = rng.choice([l for l in letters if l != previous])
with open(f"{out}/names-letters.txt", "w") as f:
    for line in open(f"{world}/real/LOC_synset_mapping.txt"):
        class_id, name = line.split(None, 1)
        f.write(f"{class_id} {names.get(class_id, name.strip())}\n")
rng = random.Random(5)
for suite in ["isekai-pair", "isekai-10"]:
    mapping = {}
    def letter(name):
        if name not in mapping:
            mapping[name] = rng.choice(letters)
        return mapping[name]
    with open(f"{out}/{suite}-letters.jsonl", "w") as f:
        for line in open(f"{world}/{suite}.jsonl"):
            d = json.loads(line)
            positive, negative = letter(d["positive_promt"]), letter(d["negative_promt"])
            if negative == positive:
                negative = letters[(letters.index(positive) + 1) % 26]
            d["label_name"] = positive if d["label_name"] == d["positive_promt"] else negative
            d["positive_promt"], d["negative_promt"] = positive, negative
            f.write(json.dumps(d) + "\n")
PY
echo "$OUT: one-letter names written"
