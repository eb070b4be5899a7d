package verify

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/bundle-dev/bundle/layout"
)

// TestEveryPathSeesTheSameBundle opens one bundle every way a command can
// (a plain tar and a seekable zstd file at random, a gzip file and standard
// input as streams) and asserts they all see the same entries at the same
// tar offsets, and the same graph.
func TestEveryPathSeesTheSameBundle(t *testing.T) {
	dir := t.TempDir()
	paths := map[string]struct {
		path  string
		stdin []byte
	}{}
	for _, c := range []layout.Compression{layout.None, layout.Zstd, layout.Gzip} {
		data := smallWrittenBundle(t, c)
		p := filepath.Join(dir, "b"+extFor(c))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		paths[string(c)+" file"] = struct {
			path  string
			stdin []byte
		}{p, nil}
		paths[string(c)+" stdin"] = struct {
			path  string
			stdin []byte
		}{"-", data}
	}
	var want []string
	var wantFrom string
	for _, name := range slices.Sorted(maps.Keys(paths)) {
		p := paths[name]
		b, err := Open(context.Background(), p.path, Options{Stdin: bytes.NewReader(p.stdin)})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var view []string
		for _, e := range b.meta {
			view = append(view, fmt.Sprintf("%s %d at %d/%d canonical=%v", e.Name, e.Size, e.Header, e.Offset, e.Canonical))
		}
		err = b.Blobs(context.Background(), func(e layout.Entry, d digest.Digest, r io.Reader) error {
			view = append(view, fmt.Sprintf("%s %d at %d/%d canonical=%v", e.Name, e.Size, e.Header, e.Offset, e.Canonical))
			_, err := io.Copy(io.Discard, r)
			return err
		})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, n := range b.Graph.Nodes() {
			view = append(view, fmt.Sprintf("node %s %s err=%v", n.Desc.Digest, n.MediaType(), n.Err))
		}
		for _, r := range b.Graph.Roots {
			view = append(view, fmt.Sprintf("root %q %d %s", r.Name, r.Kind, r.Subject))
		}
		b.Close()
		if want == nil {
			want, wantFrom = view, name
			continue
		}
		if !slices.Equal(view, want) {
			t.Errorf("%s sees\n%v\n%s sees\n%v", name, view, wantFrom, want)
		}
	}
}
