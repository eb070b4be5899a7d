package layout

import (
	"bytes"
	"io"
	"sync"
	"testing"
)

// benchEntries is ~64 MiB: 4 MiB blobs, alternately incompressible
// (marked precompressed, as a gzip layer would be) and JSON-like text.
var benchEntries = sync.OnceValue(func() []testEntry {
	entries := []testEntry{{name: LayoutFile, data: LayoutBytes()}, {name: IndexFile, data: textBytes(0, 4000)}}
	for i := range 16 {
		if i%2 == 0 {
			entries = append(entries, blobEntry(randomBytes(uint64(i), 4<<20), true))
		} else {
			entries = append(entries, blobEntry(textBytes(uint64(i), 4<<20), false))
		}
	}
	return entries
})

func benchmarkWriter(b *testing.B, c Compression) {
	entries := benchEntries()
	var total int64
	for _, e := range entries {
		total += int64(len(e.data))
	}
	b.SetBytes(total)
	b.ResetTimer()
	var out int64
	for b.Loop() {
		w, err := NewWriter(io.Discard, c, WriterOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range entries {
			if err := w.WriteEntry(e.name, int64(len(e.data)), bytes.NewReader(e.data), e.precompressed); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		out = w.Written()
	}
	b.ReportMetric(float64(out)/float64(total), "ratio")
}

func BenchmarkWriterZstd(b *testing.B) { benchmarkWriter(b, Zstd) }
func BenchmarkWriterGzip(b *testing.B) { benchmarkWriter(b, Gzip) }
func BenchmarkWriterNone(b *testing.B) { benchmarkWriter(b, None) }
