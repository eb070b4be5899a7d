package parts

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// MaxSidecar bounds the FILE.sha256 read: a few hundred parts at most.
const MaxSidecar = 1 << 20

// metaPrefix starts the comment line that records how the archive was cut.
// sha256sum -c skips lines starting with '#', and the signature covers the
// line like the sums.
const metaPrefix = "# bundle parts v1"

// Sum is one line of a sidecar: a file and its sha256.
type Sum struct {
	Name   string `json:"name"` // base name, as sha256sum writes it
	SHA256 string `json:"sha256"`
}

// Layout is how an archive was cut: what parity needs to rebuild a part.
type Layout struct {
	Size     int64 `json:"size"`     // of the whole archive
	PartSize int64 `json:"partSize"` // of every data part but the last
	Data     int   `json:"data"`     // number of data parts
	Parity   int   `json:"parity"`   // number of parity parts
	// Shards is the number of data shards the code was computed over:
	// the writer does not know how many parts a stream will make, so it
	// codes over a fixed number and the parts it never wrote count as
	// zeros.
	Shards int `json:"shards"`
}

// DataSize is the size data part i must have.
func (l Layout) DataSize(i int) int64 {
	if i < l.Data-1 {
		return l.PartSize
	}
	return l.Size - int64(l.Data-1)*l.PartSize
}

// ShardSize is the size of a parity part: that of the first data part.
func (l Layout) ShardSize() int64 { return min(l.PartSize, l.Size) }

// Sidecar is FILE.sha256: one line per file and, for parts, their layout.
type Sidecar struct {
	Layout *Layout // nil for a single file
	Sums   []Sum
}

// Split says the sidecar lists parts.
func (s *Sidecar) Split() bool { return s.Layout != nil }

// Lookup returns the sum listed for the file called name.
func (s *Sidecar) Lookup(name string) (string, bool) {
	for _, e := range s.Sums {
		if e.Name == name {
			return e.SHA256, true
		}
	}
	return "", false
}

// Bytes is the sidecar in sha256sum format.
func (s *Sidecar) Bytes() []byte {
	var b bytes.Buffer
	if l := s.Layout; l != nil {
		fmt.Fprintf(&b, "%s size=%d part-size=%d data=%d parity=%d shards=%d\n", metaPrefix, l.Size, l.PartSize, l.Data, l.Parity, l.Shards)
	}
	for _, e := range s.Sums {
		fmt.Fprintf(&b, "%s  %s\n", e.SHA256, e.Name)
	}
	return b.Bytes()
}

// ReadSidecar reads and parses the sidecar at path.
func ReadSidecar(path string) (*Sidecar, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSidecar+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(data) > MaxSidecar {
		return nil, fmt.Errorf("%s is larger than %d KiB: not a checksum file bundle wrote", path, MaxSidecar>>10)
	}
	s, err := ParseSidecar(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParseSidecar parses sha256sum output, with bundle's layout line if any.
func ParseSidecar(data []byte) (*Sidecar, error) {
	s := &Sidecar{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.TrimSpace(line) == "":
			continue
		case strings.HasPrefix(line, metaPrefix):
			l, err := parseLayout(strings.TrimPrefix(line, metaPrefix))
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			s.Layout = l
			continue
		case strings.HasPrefix(line, "#"):
			continue
		}
		sum, name, ok := strings.Cut(line, " ")
		name = strings.TrimPrefix(strings.TrimPrefix(name, " "), "*")
		sum = strings.ToLower(sum)
		if b, err := hex.DecodeString(sum); !ok || err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("line %d: %q is not a sha256 in sha256sum format", n, line)
		}
		if name == "" || filepath.Base(name) != name {
			// Only names beside the sidecar: a listed path must not reach elsewhere.
			name = filepath.Base(name)
		}
		s.Sums = append(s.Sums, Sum{Name: name, SHA256: sum})
	}
	if len(s.Sums) == 0 {
		return nil, errors.New("it lists no file")
	}
	if s.Layout != nil && len(s.Sums) != s.Layout.Data+s.Layout.Parity {
		return nil, fmt.Errorf("it lists %d files for %d data and %d parity parts", len(s.Sums), s.Layout.Data, s.Layout.Parity)
	}
	return s, nil
}

func parseLayout(fields string) (*Layout, error) {
	l := &Layout{}
	want := map[string]any{"size": &l.Size, "part-size": &l.PartSize, "data": &l.Data, "parity": &l.Parity, "shards": &l.Shards}
	for _, f := range strings.Fields(fields) {
		k, v, _ := strings.Cut(f, "=")
		p, ok := want[k]
		if !ok {
			continue
		}
		if _, err := fmt.Sscan(v, p); err != nil {
			return nil, fmt.Errorf("layout field %s=%q: %w", k, v, err)
		}
		delete(want, k)
	}
	if len(want) > 0 {
		return nil, fmt.Errorf("layout line lacks %d field(s)", len(want))
	}
	switch {
	case l.Size < 0 || l.PartSize <= 0 || l.Data < 1 || l.Parity < 0:
		return nil, fmt.Errorf("layout line out of range: %+v", *l)
	case (l.Size+l.PartSize-1)/l.PartSize != int64(l.Data) && !(l.Size == 0 && l.Data == 1):
		return nil, fmt.Errorf("layout line: %d bytes in parts of %d is not %d parts", l.Size, l.PartSize, l.Data)
	case l.Parity > 0 && (l.Shards < l.Data || l.Shards+l.Parity > MaxShards):
		return nil, fmt.Errorf("layout line: %d shards for %d data and %d parity parts", l.Shards, l.Data, l.Parity)
	}
	return l, nil
}
