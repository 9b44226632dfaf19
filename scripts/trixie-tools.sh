#!/usr/bin/env bash
# Installs cosign and oras from Debian 13 (trixie) on this Debian 12 machine (run as root), for
# tests/e2e_consumer.rs: the tools consumers check mab's signatures and attachments with. Debian 12
# packages neither; trixie's .debs depend on libc6 (>= 2.34) only (Debian 12 has 2.36), so their
# binaries run here. The host's apt sources and package database stay as they are: apt reads
# trixie's index into a directory of its own ($MAB_TRIXIE_TOOLS), downloads the .debs there, and
# `dpkg-deb -x` unpacks them; the binaries are linked into /usr/local/bin.
# Whatever versions trixie has are installed (cosign 2.5.0 and oras 1.2.0 when docs/supply-chain.md
# was measured): a point release must not fail a fresh machine; what fails is a binary that does
# not run. Idempotent: when both run it only checks (0.1 s).
set -euo pipefail

DIR=${MAB_TRIXIE_TOOLS:-/var/cache/mab/trixie-tools}
MIRROR=${MAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
BIN=/usr/local/bin
TOOLS=(cosign oras)

log() { printf 'trixie-tools: %s\n' "$*" >&2; }

# Whether $BIN's tool runs (both have a `version` command that needs no network).
runs() {
    "$BIN/$1" version >/dev/null 2>&1
}

wanted=()
for name in "${TOOLS[@]}"; do
    runs "$name" || wanted+=("$name")
done
((${#wanted[@]})) || exit 0

[ "$(id -u)" -eq 0 ] || { log "must run as root (writes $DIR and $BIN)"; exit 1; }
log "installing ${wanted[*]} from Debian 13 into $DIR"
mkdir -p "$DIR/lists/partial" "$DIR/cache/archives/partial" "$DIR/debs" "$DIR/root"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR trixie main" >"$DIR/sources.list"
apt=(-o "Dir::Etc::SourceList=$DIR/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$DIR/lists" -o "Dir::Cache=$DIR/cache"
    -o "APT::Architectures::=$(dpkg --print-architecture)"
    -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
    -o APT::Sandbox::User=root)
apt-get "${apt[@]}" update -qq
rm -f "$DIR"/debs/*.deb
(cd "$DIR/debs" && apt-get "${apt[@]}" download -qq "${wanted[@]}")
for name in "${wanted[@]}"; do
    deb=$(ls "$DIR/debs/${name}"_*.deb 2>/dev/null | head -n1)
    [ -n "$deb" ] || { log "could not download $name"; exit 1; }
    dpkg-deb -x "$deb" "$DIR/root"
    dpkg-deb -f "$deb" Version >"$DIR/$name.version"
    ln -sf "$DIR/root/usr/bin/$name" "$BIN/$name"
done
for name in "${wanted[@]}"; do
    runs "$name" || { log "$BIN/$name does not run: $("$BIN/$name" version 2>&1 | tail -n 3)"; exit 1; }
    # Debian's cosign binary reports its version as "devel": the package's is the one to tell.
    log "$name $(cat "$DIR/$name.version") in $BIN"
done
# trixie's index and the .debs (about 60 MB) are not needed again.
rm -rf "$DIR/lists" "$DIR/cache" "$DIR/debs"
