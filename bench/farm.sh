#!/usr/bin/env bash
# The real peer, side by side: `podman farm build` (podman >= 4.9) against `mab run`, on podman 5,
# with two local podman services (`podman system service` on unix sockets, each with a storage of
# its own, as two machines would have) as the farm's nodes and as mab's [nodes]: amd64 natively
# on both, arm64 through the binfmt emulator. The work is bench/run.sh's monorepo: 8 images in a
# 3-level DAG (base -> 3 libs -> 4 apps), each with a CPU-bound RUN step, for linux/amd64 and
# linux/arm64, pushed to a local registry.
#   - farm's way, as its docs show it: one `podman farm build` per image, in dependency order (a
#     farm build makes and pushes one manifest list; it knows nothing of the images between).
#   - mab's way: one `mab run` of the whole DAG.
# Each starts on fresh services (empty storages) with a build arg of its own (no cache).
# Measured on podman 5.4.2: a farm builds only its nodes' native platforms ("scheduling builds:
# no builder capable of building for platform "linux/arm64" available" with a binfmt handler
# registered; `podman info` has no emulated architectures to offer), so the two are compared on
# linux/amd64 alone ($PLATFORMS), and the bench first records farm's answer for linux/arm64.
# The images are tagged `latest` (no tag): podman 5.4.2's farm cannot push a tag to a registry
# with a port ("Invalid image name "127.0.0.1:5078/bench/base:1@@unknown-digest@@", unknown
# transport", podman issue #25039).
# Run as root on the machine (Debian 12): podman 4.3.1 has no farm, so the bench runs in
# scripts/podman5-root.sh's Debian 13 root:
#   bench/farm.sh [ITERATIONS [ROUNDS]]   (the RUN loop count, default 100000; rounds, default 1)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
rounds=${2:-1}
PLATFORMS=${PLATFORMS:-linux/amd64}

version=$(podman version --format '{{.Client.Version}}' 2>/dev/null || echo 0)
# mab's binary: $MAB_BIN (a path inside the repository, which the root sees at the same path),
# else the release build.
if [ "${version%%.*}" -lt 5 ]; then
    # Outside: mab is built here (the root has no cargo), then the bench runs again inside.
    [ -n "${MAB_BIN:-}" ] || cargo build --release --quiet
    exec env MAB_BIN="$(realpath "${MAB_BIN:-target/release/mab}")" \
        scripts/podman5-root.sh --exec env MAB_BIN="$(realpath "${MAB_BIN:-target/release/mab}")" bench/farm.sh "$n" "$rounds"
fi
mab=${MAB_BIN:-$PWD/target/release/mab}
[ -x "$mab" ] || { echo "farm: no $mab: run bench/farm.sh outside the root" >&2; exit 1; }

export BUILDAH_ISOLATION=chroot
port=5078
work=$(mktemp -d)
export PODMAN_CONNECTIONS_CONF=$work/connections.json
services=()
cleanup() {
    for pid in "${services[@]}" ${registry:+"$registry"}; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -f /etc/containers/registries.conf.d/mab-farm-bench.conf
    for d in "$work"/svc-*; do
        [ -d "$d/root" ] && podman --root "$d/root" --runroot "$d/run" system reset --force >/dev/null 2>&1
    done
    # The logs outlive the run, beside mab's binary (the root's /tmp does not).
    mkdir -p "$(dirname "$mab")/farm-logs" && cp "$work"/*.log "$(dirname "$mab")/farm-logs/" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# The nodes pull the base images from the registry: plain HTTP on 127.0.0.1.
mkdir -p /etc/containers/registries.conf.d
printf '[[registry]]\nlocation = "127.0.0.1:%s"\ninsecure = true\n' "$port" \
    > /etc/containers/registries.conf.d/mab-farm-bench.conf

printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s/data\nhttp:\n  addr: 127.0.0.1:%s\n' "$work" "$port" > "$work/registry.yml"
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
registry=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
base=127.0.0.1:$port/bench/busybox:base
podman manifest push --all --tls-verify=false localhost/mab-test/busybox:latest "docker://$base" > /dev/null 2>&1

# Two services with fresh storages: NAME -> its socket; waits until it answers.
service() {
    local d=$work/svc-$1
    mkdir -p "$d"
    podman --root "$d/root" --runroot "$d/run" system service --time=0 "unix://$d/podman.sock" \
        > "$d/log" 2>&1 &
    services+=($!)
    for _ in $(seq 300); do
        podman --url "unix://$d/podman.sock" version > /dev/null 2>&1 && return
        sleep 0.1
    done
    echo "farm: service $1 does not answer" >&2
    exit 1
}

# The monorepo, as bench/run.sh makes it.
proj="$work/repo"
mkdir -p "$proj"
cpu="RUN i=0; while [ \$i -lt $n ]; do i=\$((i+1)); done; uname -m > /arch-\$i"
images=(base lib-a lib-b lib-c app-1 app-2 app-3 app-4)
add() { # name parent
    mkdir -p "$proj/$1"
    printf 'FROM %s\nARG BUST\nCOPY . /ctx/\n%s %s\n' "$2" "$cpu" "# $1" > "$proj/$1/Dockerfile"
}
add base "$base"
for lib in lib-a lib-b lib-c; do add "$lib" "127.0.0.1:$port/bench/base"; done
add app-1 "127.0.0.1:$port/bench/lib-a"
add app-2 "127.0.0.1:$port/bench/lib-a"
add app-3 "127.0.0.1:$port/bench/lib-b"
add app-4 "127.0.0.1:$port/bench/lib-c"
mabconfig() { # AMD-SOCKET ARM-SOCKET
    cat > "$proj/multiarch.toml" <<TOML
[defaults]
registry  = "127.0.0.1:$port/bench"
platforms = [$(printf '"%s"' "$PLATFORMS" | sed 's/,/", "/g')]
tags      = ["latest"]

[registries."127.0.0.1:$port"]
insecure = true

[defaults.args]
BUST = "{{ vars.bust }}"

[vars]
bust = "0"

[nodes.one]
url       = "unix://$1"
platforms = ["linux/amd64"]

[nodes.two]
url       = "unix://$2"
platforms = ["linux/amd64"]
emulates  = ["linux/arm64"]
TOML
    for i in "${images[@]}"; do printf '\n[images.%s]\ncontext = "%s"\n' "$i" "$i" >> "$proj/multiarch.toml"; done
}
mabconfig /nonexistent /nonexistent
git -C "$proj" init -q
git -C "$proj" add -A
git -C "$proj" -c user.name=bench -c user.email=bench@localhost commit -qm bench

now_ms() { echo $(($(date +%s%N) / 1000000)); }

farm_round() { # ROUND -> wall ms
    local r=$1 start i
    service "farm-$r-1"
    service "farm-$r-2"
    podman system connection add "farm-$r-1" "unix://$work/svc-farm-$r-1/podman.sock" >&2
    podman system connection add "farm-$r-2" "unix://$work/svc-farm-$r-2/podman.sock" >&2
    podman farm create "bench-$r" "farm-$r-1" "farm-$r-2" >&2
    start=$(now_ms)
    for i in "${images[@]}"; do
        podman farm build --farm "bench-$r" --local=false --platforms "$PLATFORMS" \
            --tls-verify=false --build-arg "BUST=farm-$bust-$r" \
            -t "127.0.0.1:$port/bench/$i" "$proj/$i" >> "$work/farm-$r.log" 2>&1 ||
            { tail -n 30 "$work/farm-$r.log" >&2; exit 1; }
    done
    echo $(($(now_ms) - start))
}

mab_round() { # ROUND -> wall ms
    local r=$1 start
    service "mab-$r-1"
    service "mab-$r-2"
    mabconfig "$work/svc-mab-$r-1/podman.sock" "$work/svc-mab-$r-2/podman.sock"
    start=$(now_ms)
    "$mab" run -f "$proj/multiarch.toml" --var "bust=mab-$bust-$r" --progress plain \
        > "$work/mab-$r.log" 2>&1 || { tail -n 30 "$work/mab-$r.log" >&2; exit 1; }
    echo $(($(now_ms) - start))
}

# Each pushed list holds every platform.
check_lists() {
    local i p
    for i in "${images[@]}"; do
        for p in ${PLATFORMS//,/ }; do
            skopeo inspect --raw --tls-verify=false "docker://127.0.0.1:$port/bench/$i:latest" |
                grep -q "\"architecture\": *\"${p#*/}\"" || { echo "farm: $i has no $p image" >&2; exit 1; }
        done
    done
}

bust=$(date +%s%N)
# What the farm says to an emulated platform.
service probe-1
podman system connection add probe-1 "unix://$work/svc-probe-1/podman.sock" >&2
podman farm create probe probe-1 >&2
podman farm build --farm probe --local=false --platforms linux/arm64 --tls-verify=false \
    -t "127.0.0.1:$port/bench/probe" "$proj/base" > "$work/probe.log" 2>&1 &&
    echo "farm: linux/arm64 built through emulation" >&2 ||
    echo "farm: linux/arm64 on amd64 nodes: $(tail -n 1 "$work/probe.log")" >&2
echo "podman $(podman version --format '{{.Client.Version}}'), $n loop iterations, $rounds round(s)" >&2
rows=()
for r in $(seq "$rounds"); do
    farm=$(farm_round "$r")
    check_lists
    mabms=$(mab_round "$r")
    check_lists
    rows+=("$farm $mabms")
    echo "round $r: farm $farm ms, mab $mabms ms" >&2
done
echo
echo "$PLATFORMS, 8 images, RUN loop of $n"
echo "| round | podman farm build, one per image in order | mab run | farm / mab |"
echo "|---:|---:|---:|---:|"
k=0
for row in "${rows[@]}"; do
    read -r f m <<<"$row"
    k=$((k + 1))
    printf '| %d | %d.%01d s | %d.%01d s | %s |\n' "$k" $((f / 1000)) $((f % 1000 / 100)) \
        $((m / 1000)) $((m % 1000 / 100)) "$(awk -v f="$f" -v m="$m" 'BEGIN { printf "%.2f", f / m }')"
done
