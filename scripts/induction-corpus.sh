#!/usr/bin/env bash
# Writes text-only conversations that show a few invented words and ask for them in another
# order (LLaVA conversation format, no image), the corpus of `induction-probe.sh` and of the
# miniature's recognition stage (configs/mini/recognition.toml):
#   USER: Words: "casjn" "qlexgi" ... "ylsjvks". Say them in another order.
#   ASSISTANT: "casjn" "qux" ... "qlexgi".
# WORDS=MIN-MAX words per conversation (default 8-8), LETTERS=MIN-MAX letters per word
# (default 3-8), SEED (default 23), COUNT conversations (default 40000); python3's standard
# library only. A pure function of these settings.
#   bash scripts/induction-corpus.sh OUT.json
set -euo pipefail
[ $# -eq 1 ] || { sed -n 2,10p "$0"; exit 2; }
python3 - "$1" "${WORDS:-8-8}" "${LETTERS:-3-8}" "${SEED:-23}" "${COUNT:-40000}" <<'PY'
import json, random, sys
path, words, letters, seed, count = sys.argv[1:]
fewest, most = (int(n) for n in words.split("-"))
shortest, longest = (int(n) for n in letters.split("-"))
rng = random.Random(int(seed))
alphabet = "abcdefghijklmnopqrstuvwxyz"
def word():
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(shortest, longest)))
conversations = []
for _ in range(int(count)):
    shown = [word() for _ in range(fewest if fewest == most else rng.randint(fewest, most))]
    said = shown[:]
    rng.shuffle(said)
    question = "Words: " + " ".join(f'"{w}"' for w in shown) + ". Say them in another order."
    answer = " ".join(f'"{w}"' for w in said) + "."
    conversations.append({"id": None, "image": None, "conversations": [
        {"from": "human", "value": question}, {"from": "gpt", "value": answer}]})
json.dump(conversations, open(path, "w"))
print(f"wrote {len(conversations)} conversations to {path}")
PY
