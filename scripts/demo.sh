#!/usr/bin/env bash
# mab's main job on a shipped example, on a fresh Debian 12 machine (run as root):
#   scripts/demo.sh
# Sets up podman and local base images (scripts/test-env.sh), starts a registry on
# 127.0.0.1:5000, runs `mab run` on examples/monorepo for linux/amd64 and linux/arm64, and shows
# one pushed manifest list. Nothing is pulled from or pushed to the internet.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/test-env.sh

port=${MAB_DEMO_PORT:-5000}
work=$(mktemp -d)
cat > "$work/registry.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/data
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
registry=$!
trap 'kill $registry 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
# The registry speaks plain HTTP: say so to podman (and, through mab, to skopeo).
printf '[[registry]]\nlocation = "127.0.0.1:%s"\ninsecure = true\n' "$port" > "$work/registries.conf"
export CONTAINERS_REGISTRIES_CONF="$work/registries.conf" BUILDAH_ISOLATION=chroot

cargo build --release --quiet
run() {
    target/release/mab run -f examples/monorepo/multiarch.toml \
        --var "registry=127.0.0.1:$port/acme" --var root_image=localhost/mab-test/busybox:latest "$@"
}
run
echo
echo "A second run: every image's inputs are in the registry now, so nothing is built or pushed:"
run -q
echo
echo "The manifest list of 127.0.0.1:$port/acme/api:1.4.2-go1.23, as the registry serves it:"
skopeo inspect --raw --tls-verify=false "docker://127.0.0.1:$port/acme/api:1.4.2-go1.23"
echo
