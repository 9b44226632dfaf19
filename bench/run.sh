#!/usr/bin/env bash
# Run benchmark: `mab run --jobs 2` against a plain sequential shell loop of the same podman
# commands, on a generated monorepo of 8 images in a 3-level DAG (base -> 3 libs -> 4 apps), each
# with a CPU-bound RUN step, for linux/amd64 and linux/arm64, pushed to a local registry, with
# the default config (mab's OCI labels on, in a git repository). Then the incremental cases:
# a rerun with nothing changed (no-op) and a rerun after one file of one leaf image changed.
# Each cold build gets a build arg of its own (BUST), so no layer cache serves it.
# Run as root after scripts/test-env.sh (scripts/test.sh runs it):
#   bench/run.sh [ITERATIONS [ROUNDS]]   (the loop count of the CPU-bound step, default 200000;
#                                         rounds of each measurement, default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200000}
rounds=${2:-3}
export BUILDAH_ISOLATION=chroot
port=5077
work=$(mktemp -d)
# Each cold run, and the sequential loop, starts on an empty podman storage of its own, as a CI
# machine does: a storage that keeps every run's images makes each podman command slower (2,000
# images here: `podman images` took 10 s), and later rounds would pay for earlier ones.
storage() { # NAME: podman and mab use a fresh storage NAME from now on
    printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' \
        "$work/storage/$1/root" "$work/storage/$1/run" > "$work/storage-$1.conf"
    export CONTAINERS_STORAGE_CONF="$work/storage-$1.conf"
}
cleanup() {
    kill "$registry" 2>/dev/null || true
    for conf in "$work"/storage-*.conf; do
        [ -e "$conf" ] && CONTAINERS_STORAGE_CONF=$conf podman system reset --force > /dev/null 2>&1
    done
    rm -rf "$work"
}
trap cleanup EXIT

printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s/data\nhttp:\n  addr: 127.0.0.1:%s\n' "$work" "$port" > "$work/registry.yml"
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
registry=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
# The base image comes from the registry, so that an empty storage can pull it.
base=127.0.0.1:$port/bench/busybox:base
podman manifest push --all --tls-verify=false localhost/mab-test/busybox:latest "docker://$base" > /dev/null 2>&1

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
sequential() { # BUST value -> the script on stdout
    "$mab" plan -f "$proj/multiarch.toml" --var "bust=$1" --format json | python3 -c '
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
'
}

# Runs a command with its output in a file; prints its wall time and the CPU time (user + system)
# of it and everything it waited for, in seconds.
timed() { # LOG COMMAND...
    python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t = time.time()
with open(sys.argv[1], "w") as log:
    r = subprocess.run(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
wall = time.time() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
if r.returncode:
    sys.exit("failed: " + " ".join(sys.argv[2:]) + ", see " + sys.argv[1])
print(f"{wall:.3f} {ru.ru_utime + ru.ru_stime:.3f}")
PY
}

mabrun() { # LABEL BUST -> wall and CPU of `mab run --jobs 2`
    timed "$work/$1.log" "$mab" run -f "$proj/multiarch.toml" --var "bust=$2" --jobs 2 \
        --progress plain --report "$work/$1.json"
}

bust=$(date +%s%N)

# What two cores give here, for this very work: one build of the benchmark's step alone, then
# two side by side, per platform. podman is busy on more than one core even alone, and a
# VM's two vCPUs may share a physical core, so the pair takes longer than one: no schedule of
# the sequential run's builds beats (pair amd64 + pair arm64) / (2 (alone amd64 + alone arm64))
# of its time.
mkdir -p "$work/pair"
printf 'FROM %s\nARG BUST\n%s\n' "$base" "$cpu" > "$work/pair/Dockerfile"
pbuild() { podman build -q --tls-verify=false --platform "linux/$1" --build-arg "BUST=$2" -t "localhost/mab-bench/pair:$2" "$work/pair" > /dev/null; }
storage pair
pbuild amd64 pull && pbuild arm64 pull
now_ms() { echo $(($(date +%s%N) / 1000000)); }
pairs=()
for r in 1 2 3; do
    for arch in amd64 arm64; do
        start=$(now_ms); pbuild "$arch" "alone-$bust-$r"; alone=$(($(now_ms) - start))
        start=$(now_ms); pbuild "$arch" "a-$bust-$r" & other=$!; pbuild "$arch" "b-$bust-$r"; wait "$other"
        pairs+=("$arch $alone $(($(now_ms) - start))")
    done
done

# The machine is noisy (the same sequential loop varies by a third from hour to hour): the two
# cold runs alternate, ROUNDS times, each with a build arg of its own.
rows=()
for r in $(seq "$rounds"); do
    sequential "seq-$bust-$r" > "$work/sequential.sh"
    storage "seq-$r"
    read -r seq_wall seq_cpu < <(timed "$work/sequential.log" bash "$work/sequential.sh")
    storage "mab-$r"
    read -r cold_wall cold_cpu < <(mabrun "cold-$r" "mab-$bust-$r")
    rows+=("$seq_wall $seq_cpu $cold_wall $cold_cpu")
done
last="mab-$bust-$rounds"
noops=() leaves=()
for r in $(seq "$rounds"); do
    read -r wall _ < <(mabrun "noop-$r" "$last")
    python3 -c "
import json, sys
built = [b['id'] for b in json.load(open('$work/noop-$r.json'))['builds'] if b['status'] == 'built']
sys.exit(f'the no-op run built {built}' if built else 0)"
    noops+=("$wall")
    echo "change $r" > "$proj/app-1/new-file"
    read -r wall _ < <(mabrun "leaf-$r" "$last")
    # The leaf's own builds (both platforms, side by side with --jobs 2) within the leaf run.
    builds=$(python3 -c "
import json
built = [b for b in json.load(open('$work/leaf-$r.json'))['builds'] if b['status'] == 'built']
assert [b['image'] for b in built] == ['app-1', 'app-1'], [b['id'] for b in built]
print(max(b['duration_ms'] for b in built) / 1000)")
    leaves+=("$wall $builds")
done

python3 - "$n" "${rows[@]}" -- "${noops[@]}" -- "${leaves[@]}" -- "${pairs[@]}" <<'PY'
import statistics, sys
args = sys.argv[2:]
i = args.index("--"); j = args.index("--", i + 1); k = args.index("--", j + 1)
rows = [list(map(float, r.split())) for r in args[:i]]
noops = [float(x) for x in args[i + 1 : j]]
leaves = [list(map(float, r.split())) for r in args[j + 1 : k]]
pairs = [r.split() for r in args[k + 1 :]]
alone = {a: statistics.median(float(r[1]) for r in pairs if r[0] == a) for a in ("amd64", "arm64")}
pair = {a: statistics.median(float(r[2]) for r in pairs if r[0] == a) for a in ("amd64", "arm64")}
bound = (pair["amd64"] + pair["arm64"]) / (2 * (alone["amd64"] + alone["arm64"]))
print(f"8 images x 2 platforms, RUN loop of {sys.argv[1]}, default labels, {len(rows)} rounds\n")
print("| round | sequential loop | its CPU | its CPU / 2 cores | `mab run --jobs 2`, cold | its CPU | cold / sequential |")
print("|---:|---:|---:|---:|---:|---:|---:|")
ratios = []
for k, (sw, sc, cw, cc) in enumerate(rows, 1):
    ratios.append(cw / sw)
    print(f"| {k} | {sw:.1f} s | {sc:.1f} s | {sc / 2 / sw:.2f} | {cw:.1f} s | {cc:.1f} s | {cw / sw:.2f} |")
cold = statistics.median(r[2] for r in rows)
print("\none build of the step alone, two side by side (median of 3): " + ", ".join(
    f"{a} {alone[a] / 1000:.2f} s, {pair[a] / 1000:.2f} s" for a in ("amd64", "arm64"))
    + f"; so no schedule of these builds on 2 vCPUs beats {bound:.2f} of the sequential run")
print(f"\ncold / sequential: median {statistics.median(ratios):.2f}, range {min(ratios):.2f}-{max(ratios):.2f}")
print(f"no-op rerun: median {statistics.median(noops):.2f} s ({100 * statistics.median(noops) / cold:.1f}% of the median cold run), range {min(noops):.2f}-{max(noops):.2f} s")
over = [w - b for w, b in leaves]
print(f"one leaf changed: median {statistics.median(w for w, _ in leaves):.2f} s, its builds {statistics.median(b for _, b in leaves):.2f} s, "
      f"the rest {statistics.median(over):.2f} s (range {min(over):.2f}-{max(over):.2f})")
PY
