package layout

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/opencontainers/go-digest"
)

// testEntry is one file to write, with the precompressed flag.
type testEntry struct {
	name          string
	data          []byte
	precompressed bool
}

// randomBytes is incompressible data, the same for the same seed.
func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	_, _ = r.Read(b)
	return b
}

// textBytes is JSON-like, compressible data.
func textBytes(seed uint64, n int) []byte {
	var b bytes.Buffer
	r := rand.New(rand.NewPCG(seed, 1))
	for b.Len() < n {
		fmt.Fprintf(&b, `{"mediaType":"application/vnd.oci.image.layer.v1.tar","size":%d,"annotations":{"k%d":"v%d"}},`, r.IntN(1<<20), r.IntN(100), r.IntN(1000))
	}
	return b.Bytes()[:n]
}

func blob(data []byte) string { return BlobPath(digest.FromBytes(data)) }

func blobEntry(data []byte, pre bool) testEntry {
	return testEntry{name: blob(data), data: data, precompressed: pre}
}

// sampleEntries has the shapes that matter: metadata first, an empty
// blob, a small one, one spanning many 64 KiB chunks, a precompressed one.
func sampleEntries() []testEntry {
	big := append(textBytes(1, 300<<10), randomBytes(2, 200<<10)...)
	return []testEntry{
		{name: LayoutFile, data: LayoutBytes()},
		{name: IndexFile, data: textBytes(3, 700)},
		blobEntry(nil, false),
		blobEntry(textBytes(4, 1000), false),
		blobEntry(big, false),
		blobEntry(randomBytes(5, 150<<10), true),
		// A sha512 name is longer than a USTAR name field.
		{name: BlobPath(digest.SHA512.FromString("x")), data: []byte("x")},
		blobEntry(textBytes(6, 512), false), // exactly one block, no padding, last
	}
}

const testChunk = 64 << 10

// writeArchive writes entries with the given compression into memory.
func writeArchive(t testing.TB, c Compression, opts WriterOptions, entries []testEntry) []byte {
	t.Helper()
	if opts.ChunkSize == 0 {
		opts.ChunkSize = testChunk
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, c, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := w.WriteEntry(e.name, int64(len(e.data)), bytes.NewReader(e.data), e.precompressed); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := w.Written(); got != int64(buf.Len()) {
		t.Fatalf("Written() = %d, buffer holds %d bytes", got, buf.Len())
	}
	return buf.Bytes()
}

// readAll reads every entry through the streaming Reader.
func readAll(r *Reader) ([]testEntry, error) {
	var out []testEntry
	for {
		e, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		data, err := io.ReadAll(r)
		if err != nil {
			return out, err
		}
		if int64(len(data)) != e.Size {
			return out, fmt.Errorf("%s: read %d bytes, header says %d", e.Name, len(data), e.Size)
		}
		out = append(out, testEntry{name: e.Name, data: data})
	}
}

func sameEntries(t *testing.T, got, want []testEntry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].name != want[i].name || !bytes.Equal(got[i].data, want[i].data) {
			t.Fatalf("entry %d: got %s (%d bytes), want %s (%d bytes)", i, got[i].name, len(got[i].data), want[i].name, len(want[i].data))
		}
	}
}

// rawTar builds a tar with arbitrary headers, for the safety tests.
func rawTar(t testing.TB, hdrs ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if h.Mode == 0 && h.Typeflag != tar.TypeXGlobalHeader {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg && h.Size > 0 {
			if _, err := tw.Write(make([]byte, h.Size)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
