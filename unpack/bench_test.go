package unpack

import (
	"testing"

	"github.com/bundle-dev/bundle/internal/testregistry"
	"github.com/bundle-dev/bundle/layout"
)

// BenchmarkImport imports a 64 MiB bundle (8 layers of 8 MiB) into an empty
// target and into one that has everything already.
func BenchmarkImport(b *testing.B) {
	f := newFixture(b)
	f.name(f.image(42, 8, 8<<20), "src:5000/team/big:1.0")
	for _, c := range []layout.Compression{layout.None, layout.Zstd} {
		file := f.file("b.tar."+string(c), writeOpts{comp: c})
		for _, full := range []bool{false, true} {
			name := string(c) + map[bool]string{false: "/empty", true: "/full"}[full]
			b.Run(name, func(b *testing.B) {
				b.SetBytes(64 << 20)
				var reg *testregistry.Registry
				if full {
					reg = testregistry.NewDistribution(b)
					if _, err, _ := importTo(b, b.Context(), file, reg.Host, nil); err != nil {
						b.Fatal(err)
					}
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if !full {
						b.StopTimer()
						reg = testregistry.NewDistribution(b)
						b.StartTimer()
					}
					if _, err, _ := importTo(b, b.Context(), file, reg.Host, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
