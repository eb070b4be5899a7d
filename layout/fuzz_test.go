package layout

import (
	"archive/tar"
	"bytes"
	"io"
	"testing"
)

// fuzzReadLimit bounds what a fuzz input may make us decompress: a few
// bytes of zstd can describe gigabytes of zeros.
const fuzzReadLimit = 4 << 20

func fuzzSeeds(f *testing.F) {
	small := []testEntry{{name: LayoutFile, data: LayoutBytes()}, blobEntry([]byte("x"), false)}
	for _, c := range allCompressions {
		f.Add(writeArchive(f, c, WriterOptions{}, small))
	}
	f.Add(rawTar(f, &tar.Header{Name: "blobs/", Typeflag: tar.TypeDir}, &tar.Header{Name: "../x", Typeflag: tar.TypeReg}))
	f.Add([]byte{})
}

func FuzzReader(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		seen := map[string]bool{}
		var total int64
		for {
			e, err := r.Next()
			if err != nil {
				return
			}
			if CheckName(e.Name) != nil || seen[e.Name] {
				t.Fatalf("Next returned an unsafe or repeated entry %q", e.Name)
			}
			seen[e.Name] = true
			n, err := io.CopyN(io.Discard, r, fuzzReadLimit-total)
			total += n
			if err == nil || total >= fuzzReadLimit {
				return
			}
			if err != io.EOF {
				return
			}
			if n != e.Size {
				t.Fatalf("%s: read %d bytes, header says %d", e.Name, n, e.Size)
			}
		}
	})
}

func FuzzSeekTable(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := OpenArchive(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		var total int64
		for _, e := range a.Entries() {
			if CheckName(e.Name) != nil {
				t.Fatalf("Entries has an unsafe name %q", e.Name)
			}
			rc, err := a.Open(e.Name)
			if err != nil {
				t.Fatalf("listed entry %q does not open: %v", e.Name, err)
			}
			n, err := io.CopyN(io.Discard, rc, fuzzReadLimit-total)
			rc.Close()
			total += n
			if total >= fuzzReadLimit {
				return
			}
			if err == io.EOF && n != e.Size {
				t.Fatalf("%s: read %d bytes, listed %d", e.Name, n, e.Size)
			}
		}
	})
}
