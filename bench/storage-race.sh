#!/usr/bin/env bash
# Another podman process removing images beside a run (a CI host where other jobs run
# `podman rmi` or `podman image prune`): podman before buildah 1.43 fails a build whose cache
# lookup meets a layer that went away ("layer not known", buildah#5674). This runs a
# `podman build` + `podman rmi` loop and, beside it, RUNS cold runs of a two-build project
# (a fresh 1 MiB file each run, so that every build looks through the cache and misses) with
# `[builder] retries = 0` and then with the default 3, and counts the runs that failed and the
# builds mab ran again. Run as root after scripts/test-env.sh:
#   bench/storage-race.sh [RUNS]     (default 15)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-15}
mab=$(pwd)/target/release/mab
[ -x "$mab" ] || cargo build --release --quiet
export BUILDAH_ISOLATION=chroot
base=localhost/mab-test/busybox
work=$(mktemp -d)
churn=localhost/mab-bench/churn-$$:1
stop=$work/stop
trap 'touch "$stop"; wait; rm -rf "$work"; podman rmi "$churn" >/dev/null 2>&1 || true' EXIT

# The loop: builds an image of its own and removes it, until told to stop.
mkdir -p "$work/churn" "$work/project"
cp /bin/ls "$work/churn/tool"
printf 'FROM %s:arm64\nCOPY tool /usr/bin/tool\nRUN echo hi > /hello\n' "$base" > "$work/churn/Containerfile"
(
    n=0
    while [ ! -e "$stop" ]; do
        podman build -q --platform linux/arm64 -t "$churn" "$work/churn" > /dev/null 2>&1 || true
        podman rmi "$churn" > /dev/null 2>&1 || true
        n=$((n + 1))
    done
    echo "$n" > "$work/churned"
) &

cd "$work/project"
printf 'FROM %s:latest\nCOPY f /f\n' "$base" > Dockerfile
git init -q
printf '[builder]\nretries = 0\n\n[defaults]\nregistry = "127.0.0.1:5999/race"\nplatforms = ["linux/amd64", "linux/arm64"]\ntags = ["1"]\n\n[images.race]\n' > multiarch.toml
head -c 1048576 /dev/urandom > f
git add -A && git -c user.email=bench@mab -c user.name=bench commit -qm bench

printf '| `retries` | runs | failed | builds run again |\n|---:|---:|---:|---:|\n'
for retries in 0 3; do
    sed -i "s/^retries = .*/retries = $retries/" multiarch.toml
    failed=0 again=0
    for _ in $(seq "$runs"); do
        head -c 1048576 /dev/urandom > f
        "$mab" run --no-push --rebuild --progress plain > "$work/out" 2>&1 || failed=$((failed + 1))
        logs=$(ls -td .mab/runs/*/ | head -1)
        again=$((again + $(cat "$logs"/*.log | grep -c "^mab: transient failure" || true)))
    done
    printf '| %s | %s | %s | %s |\n' "$retries" "$runs" "$failed" "$again"
done
touch "$stop"
wait
echo "the loop built and removed its image $(cat "$work/churned") times"
