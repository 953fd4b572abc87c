#!/usr/bin/env bash
# The client checks of `lcl serve` (tests/clients/check_clients.py): the official openai
# Python client, and with --browser Debian's headless Chromium (apt packages chromium and
# chromium-driver, installed here when missing). The venv <repo>/.client-venv is built on
# first use with pinned versions.
#   bash tests/clients/run.sh target/debug/lcl [--browser] [--screenshot docs/serve-page.png]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="$ROOT/.client-venv"
PINS="openai==3.57.0 selenium==4.50.0"
LCL="${1:?usage: run.sh LCL_BINARY [--browser] [--screenshot FILE]}"
shift

if [ ! -f "$VENV/.ready-${PINS// /-}" ]; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    echo "client checks: installing $PINS into $VENV (once)" >&2
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install --quiet --disable-pip-version-check $PINS >&2
    touch "$VENV/.ready-${PINS// /-}"
fi
if [[ " $* " == *" --browser "* ]] && ! [ -x /usr/bin/chromedriver ]; then
    echo "client checks: installing Debian's chromium and chromium-driver" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi
# selenium must use the driver given, not look one up on the network
export SE_OFFLINE=true
exec "$VENV/bin/python" "$HERE/check_clients.py" --lcl "$LCL" "$@"
