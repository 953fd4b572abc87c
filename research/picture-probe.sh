#!/usr/bin/env bash
# Does a model read its pictures? Scores MODEL without learning (lr 1e-12: the mean loss per
# supervised token of `lcl train`, batch 8) on N captions of a conversation file and on the same
# captions with every picture moved to the next caption's (of another class but for a few): a
# model that names what it sees scores the true captions clearly lower; equal scores mean its
# answers do not depend on the picture. TEXT=FILE.json scores a text-only file as well (e.g.
# the induction corpus, to see that copying stayed). Seconds per file on the miniature.
#   bash research/picture-probe.sh MODEL CAPTIONS.json IMAGES OUT [N]
#   bash research/picture-probe.sh checkpoints/mini/vanilla world/real/captions.json world/real/images runs/picture-probe
set -euo pipefail
[ $# -ge 4 ] || { sed -n 2,9p "$0"; exit 2; }
MODEL="$1" CAPTIONS="$2" IMAGES="$3" OUT="$4" N="${5:-400}"
[ -e "$OUT" ] && { echo "$OUT exists; remove it first" >&2; exit 1; }
mkdir -p "$OUT/true" "$OUT/moved"
python3 - "$CAPTIONS" "$OUT" "$N" <<'PY'
import json, random, sys
path, out, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
captions = [c for c in json.load(open(path)) if c.get("image")]
if len(captions) < count:
    sys.exit(f"{path}: {len(captions)} conversations with a picture, fewer than {count}")
random.seed(5)
random.shuffle(captions)
captions = captions[:count]
moved = [dict(c, image=other["image"]) for c, other in zip(captions, captions[1:] + captions[:1])]
same = sum(c["image"].split("/")[0] == m["image"].split("/")[0] for c, m in zip(captions, moved))
json.dump(captions, open(f"{out}/true/true.json", "w"))
json.dump(moved, open(f"{out}/moved/moved.json", "w"))
print(f"{count} captions; {same} of the moved pictures are still of the caption's class")
PY
if [ -n "${TEXT:-}" ]; then
    mkdir -p "$OUT/text"
    cp "$TEXT" "$OUT/text/text.json"
fi
for name in true moved ${TEXT:+text}; do
    IMAGES="$IMAGES" bash "$(dirname "$0")/train-conversations.sh" "$MODEL" "$OUT/$name/$name.json" \
        "$OUT/$name" "$name" $(( (N + 7) / 8 )) 8 1e-12 > "$OUT/$name/log" 2>&1 ||
        { tail -5 "$OUT/$name/log" >&2; exit 1; }
    python3 -c "
import json, sys
losses = [json.loads(line)['loss'] for line in open(sys.argv[1])]
print(f'{sys.argv[2]:>5}: {sum(losses) / len(losses):.3f} per supervised token ({len(losses)} steps of 8)')
" "$OUT/$name/run/steps.jsonl" "$name"
done
