package bench

import (
	"encoding/binary"
	"io"
	"math/rand/v2"
)

// Open streams a layer's bytes. Random layers come from ChaCha8, which fills
// gigabytes a second, so generating is never what a run waits for.
func (l Layer) Open() io.Reader {
	if l.Kind == Text {
		return newTextReader(l.Seed, l.Size)
	}
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], l.Seed)
	return io.LimitReader(rand.NewChaCha8(key), l.Size)
}

// words make the text layers and payloads compress the way configuration
// files and SBOMs do (about 3-4x), and hold nothing JSON would need to escape.
var words = []string{
	"package", "version", "license", "Apache-2.0", "MIT", "sha256", "name", "supplier",
	"Organization:", "relationship", "DEPENDS_ON", "CONTAINS", "file", "usr/lib", "usr/bin",
	"etc/ssl", "libc6", "openssl", "zlib1g", "ca-certificates", "tzdata", "busybox", "musl",
	"python3", "golang", "node", "amd64", "arm64", "linux", "debian", "bookworm", "alpine",
	"3.20", "1.2.13", "2.36-9", "0.9.8", "NOASSERTION", "SPDXRef-Package", "checksum",
	"downloadLocation", "https://deb.debian.org", "filesAnalyzed", "false", "true", "{", "}",
	"=", "#", "[section]", "enabled", "timeout", "30s", "path", "/var/lib", "user", "root",
}

// textReader yields size bytes of word salad with line breaks.
type textReader struct {
	rng     *rand.Rand
	left    int64
	pending []byte
	col     int
}

func newTextReader(seed uint64, size int64) *textReader {
	return &textReader{rng: rand.New(rand.NewPCG(seed, ^seed)), left: size}
}

func (t *textReader) Read(p []byte) (int, error) {
	if t.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > t.left {
		p = p[:t.left]
	}
	n := 0
	for n < len(p) {
		if len(t.pending) == 0 {
			t.pending = t.next()
		}
		c := copy(p[n:], t.pending)
		t.pending = t.pending[c:]
		n += c
	}
	t.left -= int64(n)
	return n, nil
}

func (t *textReader) next() []byte {
	w := words[t.rng.IntN(len(words))]
	sep := byte(' ')
	t.col += len(w) + 1
	if t.col > 72 {
		sep, t.col = '\n', 0
	}
	return append([]byte(w), sep)
}
