#!/usr/bin/env bash
# The whole test suite, with its set-up. On a fresh Debian 12 machine, run as root:
#   scripts/test.sh
# It installs what the tests need from Debian's packages (when missing), then runs cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v git >/dev/null || need+=(git)
command -v dot >/dev/null || need+=(graphviz)
if ((${#need[@]})); then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing ${need[*]}: install them (apt-get install ${need[*]}) or run as root" >&2
        exit 1
    fi
    # A mirror sync can break one index; the install below says whether what we need came.
    apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

cargo test --locked "$@"
