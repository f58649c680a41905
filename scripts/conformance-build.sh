#!/usr/bin/env bash
# Build the Go conformance host from Debian's Go packages only (GOPATH mode).
# Output: .build/conformance/bin/conformance
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work="$root/.build/conformance"
src="$work/src/conformance"
rm -rf "$src" && mkdir -p "$src/pb/dbplugin" "$src/pb/multiplexing" "$src/pb/backend" "$work/bin"
cp "$root"/test/conformance/*.go "$src/"

# protoc-gen-go (golang/protobuf 1.3) with its grpc plugin; well-known types mapped to
# the ptypes packages Debian ships.
wkt="Mgoogle/protobuf/struct.proto=github.com/golang/protobuf/ptypes/struct,Mgoogle/protobuf/timestamp.proto=github.com/golang/protobuf/ptypes/timestamp,Mgoogle/protobuf/empty.proto=github.com/golang/protobuf/ptypes/empty"
gen() { # gen <proto> <go package dir>
  protoc -I "$root/proto" -I /usr/include \
    --go_out="plugins=grpc,$wkt,M$1=conformance/pb/$2:$src/pb/$2" "$root/proto/$1"
}
gen database.proto dbplugin
gen multiplexing.proto multiplexing
gen backend.proto backend

cd "$src"
GO111MODULE=off GOPATH="$work:/usr/share/gocode" GOFLAGS=-mod=mod GOCACHE="${GOCACHE:-$work/cache}" \
  go build -o "$work/bin/conformance" . 2>&1 | grep -v '^go: warning' || true
test -x "$work/bin/conformance"
