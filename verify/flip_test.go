package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/layout"
)

// smallWrittenBundle is a bundle as bundle writes it: oci-layout naming
// index.json's digest, metadata first.
func smallWrittenBundle(t testing.TB, c layout.Compression) []byte {
	f, _ := standardFixture(t)
	data, err := json.Marshal(f.index)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := layout.NewWriter(&buf, c, layout.WriterOptions{ChunkSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteMetadata(data); err != nil {
		t.Fatal(err)
	}
	for _, manifests := range []bool{true, false} {
		for _, e := range f.entries(false)[2:] {
			if graph.IsDocument(e.data) != manifests {
				continue
			}
			if err := w.WriteEntry(e.name, int64(len(e.data)), bytes.NewReader(e.data), false); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestEveryFlippedByteIsCaught flips, one at a time, every byte of a
// small bundle's metadata and tar headers (and a sample of its blobs), in
// each compression: verify must refuse each copy, and in a plain tar name
// the entry or the header's own offset. No sidecar: the bundle must carry
// its own checks.
func TestEveryFlippedByteIsCaught(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []layout.Compression{layout.None, layout.Zstd, layout.Gzip} {
		t.Run(string(c), func(t *testing.T) {
			good := smallWrittenBundle(t, c)
			p := filepath.Join(dir, "flip"+extFor(c))
			if err := os.WriteFile(p, good, 0o644); err != nil {
				t.Fatal(err)
			}
			if rep, err := Check(context.Background(), p, Options{}); err != nil || !rep.OK {
				t.Fatalf("the undamaged bundle does not verify: %v\n%s", err, dumpProblems(rep))
			}
			var entries []layout.Entry
			if c == layout.None {
				a, err := layout.OpenArchive(bytes.NewReader(good), int64(len(good)))
				if err != nil {
					t.Fatal(err)
				}
				entries = a.Entries()
			}
			checked, harmless := 0, 0
			plain := decompressed(t, good)
			for i := range good {
				if !flipWorthChecking(c, entries, i) {
					continue
				}
				for _, mask := range masksFor(c, entries, i) {
					bad := bytes.Clone(good)
					bad[i] ^= mask
					if err := os.WriteFile(p, bad, 0o644); err != nil {
						t.Fatal(err)
					}
					rep, err := Check(context.Background(), p, Options{})
					if err != nil {
						t.Fatal(err)
					}
					checked++
					if rep.OK && c != layout.None && bytes.Equal(decompressed(t, bad), plain) {
						// A flip in a frame or member header that changes
						// nothing decompressed (a window size, gzip's mtime):
						// only the sidecar sees it.
						harmless++
						continue
					}
					if rep.OK {
						t.Fatalf("byte %d ^ %#x: verify approved the damaged bundle", i, mask)
					}
					if c == layout.None {
						if want := namesFor(entries, i); !mentionsAny(rep, want) {
							t.Fatalf("byte %d ^ %#x: no problem names %q:\n%s", i, mask, want, dumpProblems(rep))
						}
					}
				}
			}
			t.Logf("%s: %d damaged copies, %d refused, %d decompress to the same tar", c, checked, checked-harmless, harmless)
		})
	}
}

// decompressed is data's tar stream; nil when it does not decompress.
func decompressed(t testing.TB, data []byte) []byte {
	var r io.Reader = bytes.NewReader(data)
	switch layout.DetectCompression(data) {
	case layout.Gzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil
		}
		r = zr
	case layout.Zstd:
		zr, err := zstd.NewReader(r)
		if err != nil {
			return nil
		}
		defer zr.Close()
		r = zr
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return nil
	}
	return out
}

// flipWorthChecking keeps every byte of a compressed bundle's head (the
// metadata frames or members) and of a plain tar's metadata, headers,
// padding and end, and one content byte in 37 of the blobs.
func flipWorthChecking(c layout.Compression, entries []layout.Entry, i int) bool {
	if c != layout.None {
		return i < 1024 || i%97 == 0
	}
	for _, e := range entries {
		if int64(i) >= e.Offset && int64(i) < e.Offset+e.Size {
			return e.Name == layout.LayoutFile || e.Name == layout.IndexFile || i%37 == 0
		}
	}
	return true // a header, padding, or the end of the archive
}

// masksFor is how byte i is damaged: inverted, and in the JSON of
// oci-layout and index.json also its case flipped, which JSON decoding
// would forgive.
func masksFor(c layout.Compression, entries []layout.Entry, i int) []byte {
	for _, e := range entries[:min(2, len(entries))] {
		if int64(i) >= e.Offset && int64(i) < e.Offset+e.Size {
			return []byte{0xff, 0x20}
		}
	}
	return []byte{0xff}
}

// namesFor is what a problem about byte i may name: the entry whose
// header, content or padding holds it, or the header's own offset.
func namesFor(entries []layout.Entry, i int) []string {
	for k, e := range entries {
		end := e.Offset + (e.Size+511)&^511
		if int64(i) >= e.Header && int64(i) < end {
			out := []string{e.Name, fmt.Sprintf("tar offset %d", e.Header)}
			if k > 0 {
				out = append(out, entries[k-1].Name)
			}
			return out
		}
	}
	return []string{"end-of-archive", "after the tar end", "tar offset"}
}

func mentionsAny(rep *Report, names []string) bool {
	for _, p := range rep.Problems {
		if p.Severity != SeverityError {
			continue
		}
		for _, n := range names {
			if strings.Contains(p.Message, n) || strings.Contains(p.Entry, n) {
				return true
			}
		}
	}
	return false
}
