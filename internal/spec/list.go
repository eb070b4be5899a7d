package spec

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"github.com/distribution/reference"
)

// LoadList reads a plain list (`--images-from`): one reference per line,
// blank lines and `#` comments ignored.
func LoadList(path string) ([]Image, error) {
	data, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	return ParseList(path, data)
}

// ParseList parses a plain list; name is used in errors.
func ParseList(name string, data []byte) ([]Image, error) {
	var out []Image
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), maxFile)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		ref := strings.TrimSpace(text)
		if ref == "" {
			continue
		}
		col := strings.Index(sc.Text(), ref) + 1
		pos := Position{name, line, col}
		if strings.ContainsAny(ref, " \t") {
			return nil, &Error{Pos: pos, Msg: fmt.Sprintf("%q: one reference per line", ref)}
		}
		if _, err := reference.ParseNormalizedNamed(ref); err != nil {
			return nil, &Error{Pos: pos, Msg: fmt.Sprintf("%q is not an image reference: %v (want [host[:port]/]repo[:tag][@sha256:...], lower case)", ref, err)}
		}
		out = append(out, Image{Ref: ref, Pos: pos})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return out, nil
}
