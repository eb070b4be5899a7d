package verify

import (
	"encoding/json"
	"errors"
	"io"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/layout"
)

// servedBundle opens a zstd bundle holding one image with a 300 KiB layer.
func servedBundle(t *testing.T) (*Bundle, ocispec.Descriptor) {
	t.Helper()
	f := newFixture(t)
	img := f.image(7, 300<<10)
	f.tag(img, "example.com/team/app:1")
	var m ocispec.Manifest
	mustJSONOf(t, f.data[layout.BlobPath(img.Digest)], &m)
	path := writeFile(t, t.TempDir(), "b.tar.zst", f.archive(layout.Zstd, false), false)
	b, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, m.Layers[0]
}

func readAll(t *testing.T, sv *Served) error {
	t.Helper()
	if _, err := io.Copy(io.Discard, sv); err != nil {
		return err
	}
	return sv.Confirm()
}

func TestOpenServedHashesABlobOnce(t *testing.T) {
	b, layer := servedBundle(t)
	first, err := b.OpenServed(layer)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Hashed {
		t.Fatal("the first read of a blob does not hash it")
	}
	// A read beside the first waits for its verdict.
	beside, err := b.OpenServed(layer)
	if err != nil {
		t.Fatal(err)
	}
	if beside.Hashed {
		t.Error("a read beside the hashing one hashes too")
	}
	confirmed := make(chan error, 1)
	go func() { confirmed <- readAll(t, beside) }()
	if err := readAll(t, first); err != nil {
		t.Fatalf("first read: %v", err)
	}
	if err := <-confirmed; err != nil {
		t.Errorf("read beside: %v, want the first read's verdict (nil)", err)
	}
	first.Close()
	beside.Close()
	after, err := b.OpenServed(layer)
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	if after.Hashed {
		t.Error("a read after the digest was confirmed hashes again")
	}
	if err := readAll(t, after); err != nil {
		t.Errorf("read after: %v", err)
	}
}

func TestOpenServedConfirmsAloneWhenTheHashingReadStops(t *testing.T) {
	b, layer := servedBundle(t)
	first, err := b.OpenServed(layer)
	if err != nil {
		t.Fatal(err)
	}
	beside, err := b.OpenServed(layer)
	if err != nil {
		t.Fatal(err)
	}
	defer beside.Close()
	// The first client goes away after a few bytes.
	if _, err := io.CopyN(io.Discard, first, 100); err != nil {
		t.Fatal(err)
	}
	first.Close()
	if err := readAll(t, beside); err != nil {
		t.Errorf("read beside an abandoned one: %v, want it to confirm the digest itself", err)
	}
}

func TestOpenServedFailsEveryReadOfADamagedBlob(t *testing.T) {
	f := newFixture(t)
	img := f.image(8, 300<<10)
	f.tag(img, "example.com/team/app:1")
	var m ocispec.Manifest
	mustJSONOf(t, f.data[layout.BlobPath(img.Digest)], &m)
	layer := m.Layers[0]
	data := f.data[layout.BlobPath(layer.Digest)]
	data[len(data)/2] ^= 0xff // the archive holds other bytes than the digest says
	path := writeFile(t, t.TempDir(), "b.tar.zst", f.archive(layout.Zstd, false), false)
	b, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	first, err := b.OpenServed(layer)
	if err != nil {
		t.Fatal(err)
	}
	beside, err := b.OpenServed(layer)
	if err != nil {
		t.Fatal(err)
	}
	if err := readAll(t, first); !errors.Is(err, ErrMismatch) {
		t.Errorf("hashing read: %v, want a mismatch", err)
	}
	if err := readAll(t, beside); !errors.Is(err, ErrMismatch) {
		t.Errorf("read beside: %v, want the hashing read's mismatch", err)
	}
	first.Close()
	beside.Close()
	again, err := b.OpenServed(layer)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if !again.Hashed || !errors.Is(readAll(t, again), ErrMismatch) {
		t.Error("a read after a mismatch is not hashed and refused again")
	}
}

func mustJSONOf(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}
