#!/usr/bin/env bash
# The whole test suite, with its set-up. On a fresh Debian 12 machine, run as root:
#   scripts/test.sh
# It brings up the end-to-end environment (scripts/test-env.sh: podman, skopeo, registry,
# binfmt handlers, base images), then runs cargo test. Extra arguments go to cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/test-env.sh
# podman's default isolation fails on this machine kind ("cgroups in hybrid mode not supported").
export BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}
# The end-to-end tests are compiled in (build.rs checks their environment first).
export MAB_E2E=1
cargo test --locked "$@"
