#!/usr/bin/env bash
# A copy of an image folder in which every picture of a class is its class's first picture
# (hard links, no extra disk), under the original file names: a sampler still draws distinct
# files, but a query picture is exactly its support pictures. The easiest link to learn: the
# miniature's research/configs/link-identical.toml trains on it. Beside world/real/images, the
# copy finds the same names file (LOC_synset_mapping.txt in its parent folder).
#   bash research/identical-pictures.sh world/real/images world/real/same-pictures
set -euo pipefail
[ $# -eq 2 ] || { sed -n 2,7p "$0"; exit 2; }
source="$1" out="$2"
[ -d "$source" ] || { echo "$source: no such image folder" >&2; exit 1; }
[ -e "$out" ] && { echo "$out exists; remove it first" >&2; exit 1; }
classes=0
for dir in "$source"/*/; do
    class="$(basename "$dir")"
    first="$(ls "$dir" | sort -V | head -n 1)"
    [ -n "$first" ] || { echo "$dir: no picture" >&2; exit 1; }
    mkdir -p "$out/$class"
    for picture in "$dir"*; do
        ln "$dir$first" "$out/$class/$(basename "$picture")"
    done
    classes=$((classes + 1))
done
echo "wrote $classes classes to $out"
