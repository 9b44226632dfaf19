#!/usr/bin/env bash
# Emulated against cross-compiled: the app of examples/cross built for linux/arm64 on this
# (amd64) machine two ways, with the same stand-in compiler doing the same work:
#   - emulated: the toolchain is built for arm64 and the compile step runs under qemu-aarch64;
#   - cross-compiled: the toolchain is built for the machine that builds, the compile step runs
#     natively in a `FROM --platform=$BUILDPLATFORM` stage (examples/cross as shipped).
# Each is a cold `mab run --no-push`: a build arg unique to the run (NONCE) reaches every RUN
# step, so no layer comes from the cache (removing images does not work here: podman 4.3.1's
# `images` and `image prune` fail on the local base list). The table gives the app build's own
# time from the run report, and the whole run. Run as root after
# scripts/test-env.sh:
#   bench/cross.sh [WORK]     (loop rounds of the stand-in compiler, default 2000000)
set -euo pipefail
cd "$(dirname "$0")/.."
work_rounds=${1:-2000000}
export BUILDAH_ISOLATION=chroot
base=localhost/mab-test/busybox:latest
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet
mab=$PWD/target/release/mab

for variant in emulated cross; do
    dir="$work/$variant"
    cp -r examples/cross "$dir"
    nonce="$(date +%s%N)-$variant"
    sed -i "s/^args      = { TOOLCHAIN = \(.*\) }$/args      = { TOOLCHAIN = \1, WORK = \"$work_rounds\", NONCE = \"$nonce\" }/" "$dir/multiarch.toml"
    sed -i "s/^args      = { ROOT_IMAGE = \(.*\) }$/args      = { ROOT_IMAGE = \1, NONCE = \"$nonce\" }/" "$dir/multiarch.toml"
    sed -i 's/^RUN /ARG NONCE\nRUN /' "$dir/app/Dockerfile" "$dir/toolchain/Dockerfile"
    sed -i 's/^platforms = \["linux\/amd64", "linux\/arm64", "linux\/s390x"\]$/platforms = ["linux\/arm64"]/' "$dir/multiarch.toml"
    if [ "$variant" = emulated ]; then
        # The same Dockerfile without --platform=$BUILDPLATFORM: the compile step runs on arm64.
        sed -i 's/^FROM --platform=\$BUILDPLATFORM /FROM /' "$dir/app/Dockerfile"
        sed -i 's/^platforms = \["linux\/amd64"\]$/platforms = ["linux\/arm64"]/' "$dir/multiarch.toml"
    fi
    [ "$(grep -c "NONCE = \"$nonce\"" "$dir/multiarch.toml")" = 2 ] || { echo "bench/cross.sh: could not set the args" >&2; exit 1; }
done

now() { python3 -c 'import time; print(time.time())'; }
declare -A app_s run_s
for variant in emulated cross; do
    start=$(now)
    "$mab" run -f "$work/$variant/multiarch.toml" --no-push --var "root_image=$base" \
        --progress plain --report "$work/$variant.json" > "$work/$variant.log" 2>&1 \
        || { cat "$work/$variant.log"; exit 1; }
    run_s[$variant]=$(python3 -c "print($(now) - $start)")
    app_s[$variant]=$(python3 -c "
import json
r = json.load(open('$work/$variant.json'))
print([b['duration_ms'] for b in r['builds'] if b['id'] == 'app@linux-arm64'][0] / 1000)")
done

printf '| app for linux/arm64, compile loop of %s | emulated (qemu) | cross-compiled | speed-up |\n|---|---:|---:|---:|\n' "$work_rounds"
printf '| app build | %.1f s | %.1f s | %.1fx |\n' "${app_s[emulated]}" "${app_s[cross]}" "$(python3 -c "print(${app_s[emulated]} / ${app_s[cross]})")"
printf '| whole run (toolchain + app) | %.1f s | %.1f s | %.1fx |\n' "${run_s[emulated]}" "${run_s[cross]}" "$(python3 -c "print(${run_s[emulated]} / ${run_s[cross]})")"
