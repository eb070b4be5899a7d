#!/usr/bin/env bash
# The whole air-gap story on one machine, offline: two local registries
# (`bundle serve`), a sample image set with signatures and SBOMs, export,
# verify, inspect, import on the "air-gapped" side, and a read-back that
# proves every digest survived.
set -euo pipefail

BUNDLE=${BUNDLE:-bin/bundle}
BUNDLE=$(cd "$(dirname "$BUNDLE")" && pwd)/$(basename "$BUNDLE")
work=$(mktemp -d "${TMPDIR:-/tmp}/bundle-demo.XXXXXX")
pids=()

cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

# start_registry NAME: starts `bundle serve` on a free port and sets $addr.
# (Not called in $(...): the pid must reach the cleanup of this shell.)
start_registry() {
	local name=$1 addrfile="$work/$1.addr"
	"$BUNDLE" serve --dir "$work/$name-storage" --addr 127.0.0.1:0 >"$addrfile" 2>"$work/$name.log" &
	pids+=($!)
	for _ in $(seq 100); do
		if [ -s "$addrfile" ]; then addr=$(head -n1 "$addrfile"); return 0; fi
		kill -0 "${pids[-1]}" 2>/dev/null || break
		sleep 0.1
	done
	echo "demo: registry $name did not start:" >&2
	cat "$work/$name.log" >&2
	return 1
}

step "Two local registries: the connected source and the air-gapped target"
start_registry source
src=$addr
start_registry airgap
dst=$addr
echo "source  http://$src"
echo "airgap  http://$dst"

step "Seed the source with the sample images (2 images, 3 platforms, 5 referrers)"
go run ./testdata/gen -o "$work/sample"
tar -C "$work/sample" -cf "$work/sample.tar" oci-layout index.json blobs
run "$BUNDLE" import --plain-http --quiet --target "$src" "$work/sample.tar"

step "Export the images and everything attached to them"
run "$BUNDLE" export --plain-http --cache "$work/cache" -o "$work/demo.tar.zst" --json \
	"$src/demo/multi:1.0" "$src/demo/single:1.0" >"$work/export.json"

step "Carry it across: check the checksum on the other side"
(cd "$work" && run sha256sum -c demo.tar.zst.sha256)

step "Verify and inspect the bundle offline"
run "$BUNDLE" verify "$work/demo.tar.zst"
run "$BUNDLE" inspect "$work/demo.tar.zst"

step "Import into the air-gapped registry under /mirror"
run "$BUNDLE" import --plain-http --target "$dst/mirror" "$work/demo.tar.zst"

step "Read it back from the air-gapped registry and compare digests"
run "$BUNDLE" export --plain-http --quiet --cache "$work/cache-readback" -o "$work/readback.tar.zst" \
	"$dst/mirror/demo/multi:1.0" "$dst/mirror/demo/single:1.0"
run "$BUNDLE" inspect "$work/readback.tar.zst"
# Every manifest, config, layer and referrer is a blob named by its digest.
digests() { zstd -dcq "$1" | tar -t | grep '^blobs/' | sort; }
digests "$work/demo.tar.zst" >"$work/before"
digests "$work/readback.tar.zst" >"$work/after"
if ! diff -u "$work/before" "$work/after"; then
	echo "demo: the air-gapped copy differs from the bundle" >&2
	exit 1
fi
echo "identical: $(wc -l <"$work/before") digests, signatures and SBOMs included"
