package bench

import (
	"context"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

func TestGetHashWritePutsEveryObjectInPlaceAndCatchesABadOne(t *testing.T) {
	r, ds := startSource(t, 2<<20)
	ctx, c := context.Background(), NewClient(r.Host)
	out := filepath.Join(t.TempDir(), "out")
	if err := GetHashWrite(ctx, c, ds, out); err != nil {
		t.Fatal(err)
	}
	fd, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	if info, err := fd.Stat(); err != nil || info.Size() != ds.UniqueBytes {
		t.Fatalf("the floor wrote %v bytes (%v), want the data set's %d", info.Size(), err, ds.UniqueBytes)
	}
	var off int64
	for _, it := range wholeSet(ds) {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(fd, off, it.Desc.Size)); err != nil {
			t.Fatal(err)
		}
		if got := digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)); got != it.Desc.Digest {
			t.Fatalf("bytes at %d hold %s, want %s", off, got, it.Desc.Digest)
		}
		off += it.Desc.Size
	}

	// The registry serves its files as they are: one changed byte on disk
	// reaches the floor, which must notice.
	bad := slices.MaxFunc(ds.Blobs, func(a, b Item) int { return int(a.Desc.Size - b.Desc.Size) })
	blob, err := os.OpenFile(r.BlobPath(bad.Desc.Digest), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte{0}
	if _, err := blob.ReadAt(b, bad.Desc.Size/2); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := blob.WriteAt(b, bad.Desc.Size/2); err != nil {
		t.Fatal(err)
	}
	blob.Close()
	err = GetHashWrite(ctx, c, ds, out)
	if err == nil || !strings.Contains(err.Error(), bad.Desc.Digest.String()) {
		t.Errorf("GetHashWrite over a changed blob: %v, want an error naming %s", err, bad.Desc.Digest)
	}
}
