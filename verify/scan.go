package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/layout"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// copyBufSize is large so that hashing, not call overhead, sets the pace.
const copyBufSize = 1 << 20

// scan is what one pass over a layout stream learns: every blob's size and
// the manifests among them, never the blobs themselves.
type scan struct {
	comp      string
	entries   int
	sizes     map[digest.Digest]int64
	manifests map[digest.Digest]*graph.Manifest
	// notManifest says why a JSON-looking blob did not parse, for the
	// graph check to explain a manifest descriptor that points at it.
	notManifest map[digest.Digest]error
	layoutSeen  bool
	index       *graph.Manifest
	indexSeen   bool
	complete    bool // the stream was read to its end without damage
	problems    []Problem
	buf         []byte
	small       bytes.Buffer
}

func newScan() *scan {
	return &scan{
		sizes:       map[digest.Digest]int64{},
		manifests:   map[digest.Digest]*graph.Manifest{},
		notManifest: map[digest.Digest]error{},
		buf:         make([]byte, copyBufSize),
	}
}

func (s *scan) add(p Problem) { s.problems = append(s.problems, p) }

// run reads lr to its end or to the first damage that stops the stream.
func (s *scan) run(ctx context.Context, lr *layout.Reader) error {
	s.comp = string(lr.Compression())
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		e, err := lr.Next()
		if errors.Is(err, io.EOF) {
			s.complete = true
			return nil
		}
		if err != nil {
			s.add(Problem{Severity: SeverityError, Offset: lr.Offset(), Message: err.Error()})
			return nil
		}
		s.entries++
		if stop := s.entry(e, lr, lr.Offset()); stop {
			return nil
		}
	}
}

// entry checks one entry; it reports whether the stream itself broke.
func (s *scan) entry(e layout.Entry, r io.Reader, off int64) (stop bool) {
	switch e.Name {
	case layout.LayoutFile:
		s.layoutSeen = true
		data, err := graph.ReadAll(r)
		if err != nil {
			return s.readFailed(e.Name, "", off, err)
		}
		if err := checkLayoutFile(data); err != nil {
			s.add(Problem{Severity: SeverityError, Entry: e.Name, Offset: off, Message: err.Error()})
		}
	case layout.IndexFile:
		s.indexSeen = true
		data, err := graph.ReadAll(r)
		if err != nil {
			return s.readFailed(e.Name, "", off, err)
		}
		idx, err := parseIndex(data)
		if err != nil {
			s.add(Problem{Severity: SeverityError, Entry: e.Name, Offset: off, Message: err.Error()})
			return false
		}
		s.index = idx
	default:
		return s.blob(e, r, off)
	}
	return false
}

func (s *scan) blob(e layout.Entry, r io.Reader, off int64) (stop bool) {
	d, err := layout.ParseBlobPath(e.Name)
	if err != nil { // layout refuses such names; kept for foreign readers
		s.add(Problem{Severity: SeverityError, Entry: e.Name, Offset: off, Message: err.Error()})
		return false
	}
	s.sizes[d] = e.Size
	vr := NewReader(r, ocispec.Descriptor{Digest: d, Size: e.Size})
	// Only a blob small enough to be a manifest is looked at; the others
	// stream through the hash and are gone.
	if e.Size > graph.MaxManifestSize {
		if _, err := io.CopyBuffer(io.Discard, vr, s.buf); err != nil {
			return s.readFailed(e.Name, d, off, err)
		}
		return false
	}
	s.small.Reset()
	if _, err := s.small.ReadFrom(vr); err != nil {
		return s.readFailed(e.Name, d, off, err)
	}
	s.keepManifest(d, s.small.Bytes())
	return false
}

// keepManifest parses data when it looks like a manifest or index and keeps
// the parsed form (descriptors only) for the graph check.
func (s *scan) keepManifest(d digest.Digest, data []byte) {
	if !looksLikeJSONObject(data) {
		return
	}
	m, err := graph.Parse("", data)
	if err != nil {
		s.notManifest[d] = err
		return
	}
	if m.SchemaVersion == 2 || graph.IsManifest(m.MediaType) {
		s.manifests[d] = m
	}
}

// readFailed records a failed entry. A digest mismatch spoils only that
// entry; anything else means the stream broke and the pass is over.
func (s *scan) readFailed(name string, d digest.Digest, off int64, err error) bool {
	p := Problem{Severity: SeverityError, Entry: name, Digest: string(d), Offset: off}
	switch {
	case errors.Is(err, ErrMismatch):
		p.Message = fmt.Sprintf("%s does not hash to its name: %v", name, err)
		s.add(p)
		return false
	case errors.Is(err, graph.ErrTooLarge):
		p.Message = fmt.Sprintf("%s is larger than 4 MiB: refused as a hostile or broken layout", name)
		s.add(p)
		return false
	}
	p.Message = err.Error()
	s.add(p)
	return true
}

func looksLikeJSONObject(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}

func checkLayoutFile(data []byte) error {
	var l ocispec.ImageLayout
	if err := json.Unmarshal(data, &l); err != nil {
		return fmt.Errorf("oci-layout is not valid JSON (%v): the bundle was not written by an OCI layout tool or is damaged", err)
	}
	if l.Version == "" {
		return errors.New("oci-layout has no imageLayoutVersion: the bundle was not written by an OCI layout tool or is damaged")
	}
	return nil
}

// parseIndex decodes index.json and checks that it is an index.
func parseIndex(data []byte) (*graph.Manifest, error) {
	m, err := graph.Parse(ocispec.MediaTypeImageIndex, data)
	if err != nil {
		return nil, fmt.Errorf("index.json is not a valid image index: %w; export the bundle again", err)
	}
	if m.SchemaVersion != 2 {
		return nil, fmt.Errorf("index.json has schemaVersion %d, want 2: export the bundle again", m.SchemaVersion)
	}
	if !graph.IsIndex(m.MediaType) {
		return nil, fmt.Errorf("index.json has media type %q, want %s: export the bundle again", m.MediaType, ocispec.MediaTypeImageIndex)
	}
	for i, d := range m.Manifests {
		if err := d.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("index.json manifests[%d] has an invalid digest %q: %w", i, d.Digest, err)
		}
		if d.Size < 0 {
			return nil, fmt.Errorf("index.json manifests[%d] (%s) has a negative size", i, d.Digest)
		}
	}
	return m, nil
}
