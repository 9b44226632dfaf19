#!/usr/bin/env bash
# The whole suite N times in a row (default 3) from a fresh clone of this repository's HEAD,
# while another process keeps one core busy and podman builds run beside it, as on a busy CI
# machine. Run as root, after scripts/test-env.sh:
#   scripts/stress-test.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-3}
work=$(mktemp -d)
git clone -q . "$work/clone"

# One core kept busy (bounded: an hour at most).
( end=$((SECONDS + 3600)); while [ $SECONDS -lt $end ]; do :; done ) &
burner=$!
# podman builds beside the suite, in the same storage, each a CPU-bound RUN step.
beside="$work/beside"
mkdir -p "$beside"
printf 'FROM localhost/mab-test/busybox:latest\nARG N\nRUN i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; echo $N > /n\n' > "$beside/Dockerfile"
( end=$((SECONDS + 3600)); k=0
  while [ $SECONDS -lt $end ]; do
      k=$((k + 1))
      BUILDAH_ISOLATION=chroot podman build -q --build-arg "N=$k" -t localhost/stress/beside:latest "$beside" > /dev/null 2>&1 || true
  done ) &
builder=$!
cleanup() {
    kill "$burner" "$builder" 2> /dev/null || true
    wait 2> /dev/null || true
    podman rmi -f localhost/stress/beside:latest > /dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

for i in $(seq "$n"); do
    echo "stress-test: run $i of $n"
    if ! (cd "$work/clone" && CI=true scripts/test.sh) > "$work/run-$i.log" 2>&1; then
        tail -60 "$work/run-$i.log"
        echo "stress-test: run $i of $n failed"
        exit 1
    fi
    grep -E '^test result' "$work/run-$i.log" | awk '{p += $4; f += $6; i += $8} END {printf "stress-test: run passed: %d passed, %d failed, %d ignored\n", p, f, i}'
done
echo "stress-test: $n of $n runs passed"
