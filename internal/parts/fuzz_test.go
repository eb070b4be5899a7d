package parts

import (
	"reflect"
	"testing"
)

// FuzzParseSidecar feeds hostile checksum files: a sidecar comes off the
// same media as the parts. Whatever parses must write back to itself.
func FuzzParseSidecar(f *testing.F) {
	f.Add([]byte("# bundle parts v1 size=20 part-size=10 data=2 parity=1 shards=2\n" +
		"0000000000000000000000000000000000000000000000000000000000000000  b.000\n" +
		"1111111111111111111111111111111111111111111111111111111111111111  b.001\n" +
		"2222222222222222222222222222222222222222222222222222222222222222  b.p000\n"))
	f.Add([]byte("abababababababababababababababababababababababababababababababab *b.tar\n"))
	f.Add([]byte("# bundle parts v1 size=-1 part-size=0 data=99999999999 parity=300 shards=1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSidecar(data)
		if err != nil {
			return
		}
		again, err := ParseSidecar(s.Bytes())
		if err != nil {
			t.Fatalf("a parsed sidecar does not parse back: %v\n%s", err, s.Bytes())
		}
		if !reflect.DeepEqual(s, again) {
			t.Fatalf("round trip changed the sidecar:\n%+v\n%+v", s, again)
		}
		if l := s.Layout; l != nil && (l.Data < 1 || l.PartSize <= 0 || l.DataSize(l.Data-1) < 0) {
			t.Fatalf("an impossible layout was accepted: %+v", *l)
		}
	})
}
