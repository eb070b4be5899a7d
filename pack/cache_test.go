package pack

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/plugins/content/local"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestCacheListAndPrune(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "cache")
	if st, err := CacheList(ctx, dir); err != nil || st.Blobs != 0 {
		t.Fatalf("a cache that does not exist: %+v %v", st, err)
	}
	store, err := local.NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, data := range [][]byte{[]byte("one blob"), []byte("another")} {
		d := ocispec.Descriptor{Digest: digest.FromBytes(data), Size: int64(len(data))}
		if err := content.WriteBlob(ctx, store, "ref-"+d.Digest.Encoded(), bytes.NewReader(data), d); err != nil {
			t.Fatal(err)
		}
	}
	st, err := CacheList(ctx, dir)
	if err != nil || st.Blobs != 2 || st.Bytes != 15 {
		t.Fatalf("list: %+v %v, want 2 blobs of 15 bytes", st, err)
	}
	if removed, err := CachePrune(ctx, dir, time.Hour); err != nil || removed.Blobs != 0 {
		t.Fatalf("prune of what is an hour old removed %+v (%v): the blobs are new", removed, err)
	}
	if removed, err := CachePrune(ctx, dir, 0); err != nil || removed.Blobs != 2 {
		t.Fatalf("prune removed %+v (%v), want 2 blobs", removed, err)
	}
	if st, err := CacheList(ctx, dir); err != nil || st.Blobs != 0 {
		t.Fatalf("after prune: %+v %v", st, err)
	}
}
