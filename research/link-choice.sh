#!/usr/bin/env bash
# Which shown name did a model pick? Reads the predictions.jsonl of `lcl eval` (greedy
# answers) and, per suite and shot count, counts the episodes whose two names start with
# different letters, and among them the answers that start with the positive name's first
# letter, with the negative's, or with neither. A model that copies one of the shown names
# without linking it to the query picture splits the first two counts evenly, however well it
# copies the rest of the name; only a model that links the query to its support pictures
# favours the positive. Accuracy alone mixes the two (a linked but misspelt name scores 0).
#   bash research/link-choice.sh RUN/predictions.jsonl
set -euo pipefail
[ $# -eq 1 ] || { sed -n 2,9p "$0"; exit 2; }
python3 - "$1" <<'EOF'
import json, re, sys
from collections import defaultdict

path = sys.argv[1]
counts = defaultdict(lambda: [0, 0, 0, 0])
with open(path) as lines:
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            prediction, run, shots = record["prediction"], record["run"], record["shots"]
            positive, negative = record["positive"].lower(), record["negative"].lower()
        except (ValueError, KeyError) as error:
            sys.exit(f"{path}: line {number}: not an `lcl eval` prediction ({error})")
        if not positive or not negative or positive[0] == negative[0]:
            continue
        quoted = re.search(r'"([^"]*)', prediction)
        first = quoted.group(1)[:1] if quoted else ""
        count = counts[(run, shots)]
        count[0] += 1
        count[1 if first == positive[0] else 2 if first == negative[0] else 3] += 1
if not counts:
    sys.exit(f"{path}: no episode whose names start with different letters")
print("| run | shots | episodes | positive's letter | negative's letter | neither |")
print("|---|---:|---:|---:|---:|---:|")
for (run, shots), (episodes, pos, neg, other) in sorted(counts.items()):
    print(f"| {run} | {shots} | {episodes} | {pos} | {neg} | {other} |")
EOF
