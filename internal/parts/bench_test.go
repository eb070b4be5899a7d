package parts

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkWriter measures the parts writer alone against a plain file:
// hashing each part and adding it into two parity parts.
func BenchmarkWriter(b *testing.B) {
	data := testData(64 << 20)
	for _, bc := range []struct {
		name   string
		parity int
	}{{"file", -1}, {"parts", 0}, {"parts-parity-2", 2}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				dir := b.TempDir()
				base := filepath.Join(dir, "b.tar")
				if bc.parity < 0 {
					f, err := os.Create(base)
					if err != nil {
						b.Fatal(err)
					}
					for p := data; len(p) > 0; p = p[1<<20:] {
						f.Write(p[:1<<20])
					}
					f.Sync()
					f.Close()
					continue
				}
				w, err := Create(base, Options{PartSize: 16 << 20, Parity: bc.parity})
				if err != nil {
					b.Fatal(err)
				}
				for p := data; len(p) > 0; p = p[1<<20:] {
					w.Write(p[:1<<20])
				}
				if _, err := w.Commit(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
