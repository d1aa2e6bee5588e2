#!/usr/bin/env bash
# Builds the real servers the tests run against (FerretDB for MongoDB, MinIO for S3, the
# OpenID Connect provider of zitadel/oidc, a certified OP library, for external sign-in,
# Let's Encrypt's Pebble ACME CA and its DNS stand-in for certificates from ACME) at pinned
# versions into .tools/bin, which git ignores. Skips what is already built.
set -euo pipefail

FERRETDB_VERSION=v1.24.0
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
ZITADEL_OIDC_VERSION=v3.38.1
PEBBLE_VERSION=v2.10.3

root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.tools/bin"
mkdir -p "$bin"

build_ferretdb() {
	local want="$bin/ferretdb-$FERRETDB_VERSION"
	[ -x "$want" ] && return 0
	echo "tools: building FerretDB $FERRETDB_VERSION (about 90 s the first time)" >&2
	local work
	work=$(mktemp -d)
	# Runs when this function returns, then removes itself (RETURN traps are global).
	trap 'rm -rf "$work"; trap - RETURN' RETURN
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

# go_install_tool NAME PACKAGE VERSION BINARY MESSAGE: go install PACKAGE@VERSION into
# .tools/bin as NAME-VERSION, linked as NAME.
go_install_tool() {
	local want="$bin/$1-$3"
	[ -x "$want" ] && return 0
	echo "tools: $5" >&2
	local gobin
	gobin=$(mktemp -d)
	trap 'rm -rf "$gobin"; trap - RETURN' RETURN
	CGO_ENABLED=0 GOBIN="$gobin" go install "$2@$3"
	mv "$gobin/$4" "$want"
	ln -sf "$(basename "$want")" "$bin/$1"
}

build_minio() {
	go_install_tool minio github.com/minio/minio "$MINIO_VERSION" minio "building MinIO (about 4 min the first time)"
}

build_oidc_provider() {
	go_install_tool oidc-provider github.com/zitadel/oidc/v3/example/server "$ZITADEL_OIDC_VERSION" server \
		"building the OpenID Connect test provider (about 30 s the first time)"
}

build_pebble() {
	go_install_tool pebble github.com/letsencrypt/pebble/v2/cmd/pebble "$PEBBLE_VERSION" pebble \
		"building the Pebble ACME test CA (about 15 s the first time)"
	go_install_tool pebble-challtestsrv github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv "$PEBBLE_VERSION" \
		pebble-challtestsrv "building Pebble's test DNS server"
}

case "${1:-all}" in
ferretdb) build_ferretdb ;;
minio) build_minio ;;
oidc-provider) build_oidc_provider ;;
pebble) build_pebble ;;
all)
	build_ferretdb
	build_minio
	build_oidc_provider
	build_pebble
	;;
*)
	echo "usage: $0 [ferretdb|minio|oidc-provider|pebble|all]" >&2
	exit 2
	;;
esac
