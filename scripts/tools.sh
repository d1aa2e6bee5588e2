#!/usr/bin/env bash
# Builds the real servers the tests run against (FerretDB for MongoDB, MinIO for S3) at
# pinned versions into .tools/bin, which git ignores. Skips what is already built.
set -euo pipefail

FERRETDB_VERSION=v1.24.0
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c

root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.tools/bin"
mkdir -p "$bin"

build_ferretdb() {
	local want="$bin/ferretdb-$FERRETDB_VERSION"
	[ -x "$want" ] && return 0
	echo "tools: building FerretDB $FERRETDB_VERSION (about 90 s the first time)" >&2
	local work
	work=$(mktemp -d)
	trap 'rm -rf "$work"' RETURN
	(
		cd "$work"
		printf 'module ferretbuild\n\ngo 1.24\n\nrequire github.com/FerretDB/FerretDB %s\n' "$FERRETDB_VERSION" >go.mod
		printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/FerretDB/FerretDB/cmd/ferretdb"\n' >tools.go
		GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1
		cp -r "$(go list -m -f '{{.Dir}}' github.com/FerretDB/FerretDB)" ferretdb-src
		chmod -R u+w ferretdb-src
		echo "$FERRETDB_VERSION" >ferretdb-src/build/version/version.txt
		go mod edit -replace github.com/FerretDB/FerretDB=./ferretdb-src
		GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1
		CGO_ENABLED=0 go build -o "$want.tmp" github.com/FerretDB/FerretDB/cmd/ferretdb
	)
	mv "$want.tmp" "$want"
	ln -sf "$(basename "$want")" "$bin/ferretdb"
}

build_minio() {
	local want="$bin/minio-$MINIO_VERSION"
	[ -x "$want" ] && return 0
	echo "tools: building MinIO (about 4 min the first time)" >&2
	local gobin
	gobin=$(mktemp -d)
	trap 'rm -rf "$gobin"' RETURN
	CGO_ENABLED=0 GOBIN="$gobin" go install "github.com/minio/minio@$MINIO_VERSION"
	mv "$gobin/minio" "$want"
	ln -sf "$(basename "$want")" "$bin/minio"
}

case "${1:-all}" in
ferretdb) build_ferretdb ;;
minio) build_minio ;;
all)
	build_ferretdb
	build_minio
	;;
*)
	echo "usage: $0 [ferretdb|minio|all]" >&2
	exit 2
	;;
esac
