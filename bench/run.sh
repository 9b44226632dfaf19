#!/usr/bin/env bash
# Run benchmark: `mab run --jobs 2` against a plain sequential shell loop of the same podman
# commands, on a generated monorepo of 8 images in a 3-level DAG (base -> 3 libs -> 4 apps), each
# with a CPU-bound RUN step, for linux/amd64 and linux/arm64, pushed to a local registry.
# Run as root after scripts/test-env.sh (scripts/test.sh runs it):
#   bench/run.sh [ITERATIONS]      (the loop count of the CPU-bound step, default 200000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200000}
export BUILDAH_ISOLATION=chroot
base=localhost/mab-test/busybox:latest
port=5077
work=$(mktemp -d)
cleanup() { kill "$registry" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s/data\nhttp:\n  addr: 127.0.0.1:%s\n' "$work" "$port" > "$work/registry.yml"
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
registry=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

# The monorepo: every image burns CPU in a RUN step; dependencies are literal FROM lines.
proj="$work/repo"
mkdir -p "$proj"
cpu="RUN i=0; while [ \$i -lt $n ]; do i=\$((i+1)); done; uname -m > /arch-\$i"
cat > "$proj/multiarch.toml" <<TOML
[defaults]
registry  = "127.0.0.1:$port/bench"
platforms = ["linux/amd64", "linux/arm64"]
tags      = ["1"]

[registries."127.0.0.1:$port"]
insecure = true

[builder]
oci_labels = false
TOML
add() { # name parent
    mkdir -p "$proj/$1"
    printf 'FROM %s\n%s %s\n' "$2" "$cpu" "# $1" > "$proj/$1/Dockerfile"
    printf '\n[images.%s]\ncontext = "%s"\n' "$1" "$1" >> "$proj/multiarch.toml"
}
add base "$base"
for lib in lib-a lib-b lib-c; do add "$lib" "127.0.0.1:$port/bench/base:1"; done
add app-1 "127.0.0.1:$port/bench/lib-a:1"
add app-2 "127.0.0.1:$port/bench/lib-a:1"
add app-3 "127.0.0.1:$port/bench/lib-b:1"
add app-4 "127.0.0.1:$port/bench/lib-c:1"

cargo build --release --quiet
mab=$PWD/target/release/mab

# The sequential loop: the same commands, one after another, as a hand-written script would.
"$mab" plan -f "$proj/multiarch.toml" --format json | python3 -c '
import json, shlex, sys
plan = json.load(sys.stdin)
print("set -e")
print("cd " + shlex.quote(plan["workdir"]))
print("mkdir -p .mab/iid .mab/digest")
for b in plan["builds"]:
    print(shlex.join(b["argv"]))
for m in plan["manifests"]:
    print(shlex.join(m["remove_stale"]) + " || true")
    for argv in m["assemble"]:
        print(shlex.join(argv))
    for p in m["pushes"]:
        print(shlex.join(p["argv"]))
' > "$work/sequential.sh"

clear_cache() { # force real builds each time: drop the images the benchmark made
    podman images --format '{{.Repository}}:{{.Tag}}' | grep -E '^localhost/mab/(base|lib-|app-)' | xargs -r podman rmi -f > /dev/null 2>&1 || true
    podman image prune -f > /dev/null 2>&1 || true
}

clear_cache
now() { python3 -c 'import time; print(time.time())'; }
start=$(now)
bash "$work/sequential.sh" > "$work/sequential.log" 2>&1
seq_time=$(python3 -c "print($(now) - $start)")

clear_cache
start=$(now)
"$mab" run -f "$proj/multiarch.toml" --jobs 2 --progress plain > "$work/mab.log" 2>&1 || { cat "$work/mab.log"; exit 1; }
mab_time=$(python3 -c "print($(now) - $start)")

printf '| 8 images x 2 platforms, RUN loop of %s | sequential loop | mab run --jobs 2 | ratio |\n|---|---:|---:|---:|\n' "$n"
printf '| wall time | %.1f s | %.1f s | %.2f |\n' "$seq_time" "$mab_time" "$(python3 -c "print($mab_time / $seq_time)")"
