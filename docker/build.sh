#!/usr/bin/env bash
# Builds fogdb's static binaries and its images FROM scratch, pulling
# nothing: fogdb:VERSION, fogwan:VERSION and fogdb-controller:VERSION, each
# also tagged :latest.
#
#   docker/build.sh                 version from git describe
#   FOGDB_VERSION=1.2.3 docker/build.sh
#
# Prints the images' names and sizes at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

version="${FOGDB_VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT

mkdir -p "$ctx/bin" "$ctx/etc" "$ctx/rootfs/data" "$ctx/rootfs/certs"
chmod 0700 "$ctx/rootfs/data" "$ctx/rootfs/certs"
# A scratch image has no useradd: the user is two lines of text.
printf 'root:x:0:0:root:/:/sbin/nologin\nfogdb:x:65532:65532:fogdb:/data:/sbin/nologin\n' >"$ctx/etc/passwd"
printf 'root:x:0:\nfogdb:x:65532:\n' >"$ctx/etc/group"

echo "==> binaries (static, version $version)"
export CGO_ENABLED=0 GOOS=linux
ldflags="-s -w -X github.com/fogdb/fogdb/server.Version=$version"
go build -trimpath -ldflags "$ldflags" -o "$ctx/bin/fogdb" ./cmd/fogdb
go build -trimpath -ldflags "-s -w" -o "$ctx/bin/fogwan" ./cmd/fogwan
go build -trimpath -ldflags "-s -w" -o "$ctx/bin/controller" ./tests/docker/controller

# The classic builder needs no plugin; BuildKit (where buildx exists)
# builds the same FROM scratch stages without pulling either.
if ! docker buildx version >/dev/null 2>&1; then
	export DOCKER_BUILDKIT=0
fi
for target in fogwan fogdb-controller fogdb; do
	echo "==> image $target:$version"
	# The classic builder's deprecation notice is noise: show what the
	# build printed only when it failed.
	if ! docker build -q --target "$target" -f docker/Dockerfile \
		--label "org.opencontainers.image.version=$version" \
		-t "$target:$version" -t "$target:latest" "$ctx" >"$ctx/build.log" 2>&1; then
		cat "$ctx/build.log" >&2
		exit 1
	fi
done
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "^(fogdb|fogwan|fogdb-controller):$version "
