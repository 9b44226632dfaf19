#!/usr/bin/env bash
# Run benchmark: `mab run --jobs 2` against a plain sequential shell loop of the same podman
# commands, on a generated monorepo of 8 images in a 3-level DAG (base -> 3 libs -> 4 apps), each
# with a CPU-bound RUN step, for linux/amd64 and linux/arm64, pushed to a local registry, with
# the default config (mab's OCI labels on, in a git repository). Then the incremental cases:
# a rerun with nothing changed (no-op) and a rerun after one file of one leaf image changed.
# Each cold build gets a build arg of its own (BUST), so no layer cache serves it.
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

[defaults.args]
BUST = "{{ vars.bust }}"

[vars]
bust = "0"
TOML
add() { # name parent
    mkdir -p "$proj/$1"
    printf 'FROM %s\nARG BUST\nCOPY . /ctx/\n%s %s\n' "$2" "$cpu" "# $1" > "$proj/$1/Dockerfile"
    printf '\n[images.%s]\ncontext = "%s"\n' "$1" "$1" >> "$proj/multiarch.toml"
}
add base "$base"
for lib in lib-a lib-b lib-c; do add "$lib" "127.0.0.1:$port/bench/base:1"; done
add app-1 "127.0.0.1:$port/bench/lib-a:1"
add app-2 "127.0.0.1:$port/bench/lib-a:1"
add app-3 "127.0.0.1:$port/bench/lib-b:1"
add app-4 "127.0.0.1:$port/bench/lib-c:1"
git -C "$proj" init -q
git -C "$proj" add -A
git -C "$proj" -c user.name=bench -c user.email=bench@localhost commit -qm bench

cargo build --release --quiet
mab=$PWD/target/release/mab

# The sequential loop: the same commands, one after another, as a hand-written script would.
bust=$(date +%s%N)
"$mab" plan -f "$proj/multiarch.toml" --var "bust=seq-$bust" --format json | python3 -c '
import json, os, shlex, sys
plan = json.load(sys.stdin)
print("set -e")
print("cd " + shlex.quote(plan["workdir"]))
print("mkdir -p .mab/iid .mab/digest .mab/dockerfiles")
for b in plan["builds"]:
    copy = b.get("dockerfile")
    if copy:
        # The labeled copy of the Dockerfile the command names, as mab run writes it.
        text = open(plan["workdir"] + "/" + copy["base"]).read()
        head, tail = text[: copy["offset"]], text[copy["offset"] :]
        sep = "" if not head or head.endswith("\n") else "\n"
        os.makedirs(plan["workdir"] + "/.mab/dockerfiles", exist_ok=True)
        with open(plan["workdir"] + "/" + copy["path"], "w") as f:
            f.write(head + sep + copy["instruction"] + "\n" + tail)
    print(shlex.join(b["argv"]))
for m in plan["manifests"]:
    print(shlex.join(m["remove_stale"]) + " || true")
    for argv in m["assemble"]:
        print(shlex.join(argv))
    for p in m["pushes"]:
        print(shlex.join(p["argv"]))
' > "$work/sequential.sh"

now() { python3 -c 'import time; print(time.time())'; }
since() { python3 -c "print($(now) - $1)"; }
start=$(now)
bash "$work/sequential.sh" > "$work/sequential.log" 2>&1 || { tail -20 "$work/sequential.log"; exit 1; }
seq_time=$(since "$start")

run() { # label, then mab run's extra arguments
    local label=$1; shift
    start=$(now)
    "$mab" run -f "$proj/multiarch.toml" --var "bust=mab-$bust" --jobs 2 --progress plain \
        --report "$work/$label.json" "$@" > "$work/$label.log" 2>&1 || { cat "$work/$label.log"; exit 1; }
    since "$start"
}
cold_time=$(run cold)
noop_time=$(run noop)
echo "changed" > "$proj/app-1/new-file"
leaf_time=$(run leaf)
# The leaf's own builds (both platforms, side by side with --jobs 2) within the leaf run.
leaf_builds=$(python3 -c "
import json
r = json.load(open('$work/leaf.json'))
built = [b for b in r['builds'] if b['status'] == 'built']
assert [b['image'] for b in built] == ['app-1', 'app-1'], [b['id'] for b in built]
print(max(b['duration_ms'] for b in built) / 1000)")
noop_built=$(python3 -c "
import json
print(sum(b['status'] == 'built' for b in json.load(open('$work/noop.json'))['builds']))")
[ "$noop_built" = 0 ] || { echo "the no-op run built $noop_built images"; exit 1; }

printf '| 8 images x 2 platforms, RUN loop of %s, default labels | time | vs sequential | vs cold |\n|---|---:|---:|---:|\n' "$n"
printf '| sequential loop of the same podman commands | %.1f s | 1.00 | |\n' "$seq_time"
printf '| `mab run --jobs 2`, cold | %.1f s | %.2f | 1.00 |\n' "$cold_time" "$(python3 -c "print($cold_time / $seq_time)")"
printf '| no-op rerun (nothing built or pushed) | %.2f s | | %.1f%% |\n' "$noop_time" "$(python3 -c "print(100 * $noop_time / $cold_time)")"
printf '| one leaf changed (app-1 rebuilt: its builds %.1f s) | %.1f s | | %.1f%% |\n' "$leaf_builds" "$leaf_time" "$(python3 -c "print(100 * $leaf_time / $cold_time)")"
