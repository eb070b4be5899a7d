package unpack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/layout"
)

// source is an opened bundle: index.json and the manifests, and a way to
// the blobs, at random (directory, seekable archive) or as a stream.
type source struct {
	idx     ocispec.Index
	get     manifestGetter
	present func(digest.Digest) bool // random access only
	open    opener                   // random access only
	stream  *stream                  // streamed only
	close   func() error
}

// stream is a non-seekable bundle read once, after its metadata: the
// reader stands at the entry first, whose bytes are in firstData when it
// had to be looked at already.
type stream struct {
	r         *layout.Reader
	first     layout.Entry
	firstData []byte // nil: read first's content from r
	done      bool   // the stream ended before any blob
}

// openSource opens file ("-" for stdin). Random access is preferred; a
// stream whose metadata does not come first is spooled to a temporary
// directory.
func openSource(ctx context.Context, file string, stdin io.Reader, notice func(string, ...any)) (*source, error) {
	if file == "-" {
		if stdin == nil {
			return nil, errors.New("reading the bundle from standard input, but there is none")
		}
		return openStream(ctx, stdin, "standard input", notice)
	}
	l, closer, err := layout.OpenPath(file)
	if err == nil {
		s, err := randomSource(l, closer)
		if err != nil {
			closer.Close()
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		return s, nil
	}
	if !errors.Is(err, layout.ErrNotSeekable) {
		return nil, fmt.Errorf("opening bundle %s: %w", file, err)
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("opening bundle %s: %w", file, err)
	}
	s, err := openStream(ctx, f, file, notice)
	if err != nil {
		f.Close()
		return nil, err
	}
	inner := s.close
	s.close = func() error { err := inner(); f.Close(); return err }
	return s, nil
}

func randomSource(l layout.Layout, closer io.Closer) (*source, error) {
	present := presentBlobs(l.Entries())
	rc, err := l.Open(layout.IndexFile)
	if err != nil {
		return nil, fmt.Errorf("no index.json: not an OCI layout bundle: %w", err)
	}
	idx, err := parseIndex(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	return &source{
		idx:     idx,
		get:     layoutGetter(l, present),
		present: func(d digest.Digest) bool { _, ok := present[d]; return ok },
		open:    func(d digest.Digest) (io.ReadCloser, error) { return l.Open(layout.BlobPath(d)) },
		close:   closer.Close,
	}, nil
}

// openStream reads the metadata at the head of a stream: index.json, then
// the manifests it leads to. At the first entry that is neither, the
// metadata is taken as complete, unless that entry looks like a manifest
// or index.json has not come yet: then the order is foreign, and the whole
// stream is spooled to a directory.
func openStream(ctx context.Context, in io.Reader, name string, notice func(string, ...any)) (*source, error) {
	r, err := layout.NewReader(in)
	if err != nil {
		return nil, fmt.Errorf("reading bundle %s: %w", name, err)
	}
	var (
		idx     *ocispec.Index
		pending = map[digest.Digest]ocispec.Descriptor{}
		have    = map[digest.Digest][]byte{}
	)
	want := func(ds []ocispec.Descriptor) {
		for _, d := range ds {
			if _, ok := have[d.Digest]; !ok && graph.IsManifest(d.MediaType) {
				pending[d.Digest] = d
			}
		}
	}
	for {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		e, err := r.Next()
		if err == io.EOF {
			if idx == nil {
				return nil, fmt.Errorf("bundle %s has no index.json: not an OCI layout bundle", name)
			}
			return streamSource(*idx, have, &stream{r: r, done: true}), nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading bundle %s: %w", name, err)
		}
		switch e.Name {
		case layout.LayoutFile:
			continue
		case layout.IndexFile:
			i, err := parseIndex(r)
			if err != nil {
				return nil, fmt.Errorf("bundle %s: %w", name, err)
			}
			idx = &i
			want(i.Manifests)
			continue
		}
		d, err := layout.ParseBlobPath(e.Name)
		if err != nil {
			return nil, fmt.Errorf("bundle %s: entry %s: %w", name, e.Name, err)
		}
		if desc, ok := pending[d]; ok && idx != nil {
			raw, err := readManifest(r, desc)
			if err != nil {
				return nil, fmt.Errorf("bundle %s: manifest %s: %w", name, d, err)
			}
			delete(pending, d)
			have[d] = raw
			if m, err := graph.Parse(desc.MediaType, raw); err == nil {
				want(m.Children())
			}
			continue
		}
		st := &stream{r: r, first: e}
		if idx != nil {
			looks, data, err := looksLikeManifest(r, e)
			if err != nil {
				return nil, fmt.Errorf("bundle %s: entry %s: %w", name, e.Name, err)
			}
			st.firstData = data
			if !looks {
				return streamSource(*idx, have, st), nil
			}
		}
		notice("bundle %s does not list its metadata first: spooling it to a temporary directory", name)
		return spool(ctx, idx, have, st)
	}
}

// looksLikeManifest peeks at a small entry: a JSON document with a
// manifest's or index's shape means the stream's order is foreign. Large
// entries are layers, and are left unread.
func looksLikeManifest(r io.Reader, e layout.Entry) (bool, []byte, error) {
	if e.Size > graph.MaxManifestSize {
		return false, nil, nil
	}
	data, err := io.ReadAll(io.LimitReader(r, e.Size))
	if err != nil {
		return false, nil, err
	}
	var probe struct {
		SchemaVersion int              `json:"schemaVersion"`
		MediaType     string           `json:"mediaType"`
		Config        *json.RawMessage `json:"config"`
		Layers        *json.RawMessage `json:"layers"`
		Manifests     *json.RawMessage `json:"manifests"`
	}
	if json.Unmarshal(data, &probe) != nil {
		return false, data, nil
	}
	looks := graph.IsManifest(probe.MediaType) ||
		(probe.SchemaVersion == 2 && (probe.Layers != nil || probe.Manifests != nil || probe.Config != nil))
	return looks, data, nil
}

func streamSource(idx ocispec.Index, have map[digest.Digest][]byte, st *stream) *source {
	return &source{
		idx: idx,
		get: func(d ocispec.Descriptor) ([]byte, error) {
			if raw, ok := have[d.Digest]; ok {
				return raw, nil
			}
			return nil, errAbsent
		},
		stream: st,
		close:  func() error { return nil },
	}
}

// spool writes what was read so far and the rest of the stream to a
// temporary directory, and opens it as a random-access layout. The
// directory is removed when the source is closed.
func spool(ctx context.Context, idx *ocispec.Index, have map[digest.Digest][]byte, st *stream) (*source, error) {
	dir, err := os.MkdirTemp("", "bundle-import-*")
	if err != nil {
		return nil, fmt.Errorf("creating a spool directory: %w", err)
	}
	fail := func(err error) (*source, error) {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("spooling the bundle to %s (check free space in %s, or set TMPDIR): %w", dir, os.TempDir(), err)
	}
	write := func(name string, r io.Reader) error {
		if err := layout.CheckName(name); err != nil {
			return err
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	if err := write(layout.LayoutFile, bytes.NewReader(layout.LayoutBytes())); err != nil {
		return fail(err)
	}
	if idx != nil {
		data, err := json.Marshal(idx)
		if err != nil {
			return fail(err)
		}
		if err := write(layout.IndexFile, bytes.NewReader(data)); err != nil {
			return fail(err)
		}
	}
	for d, raw := range have {
		if err := write(layout.BlobPath(d), bytes.NewReader(raw)); err != nil {
			return fail(err)
		}
	}
	first := io.Reader(st.r)
	if st.firstData != nil {
		first = bytes.NewReader(st.firstData)
	}
	if err := write(st.first.Name, first); err != nil {
		return fail(err)
	}
	for {
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		e, err := st.r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(err)
		}
		if e.Name == layout.LayoutFile {
			continue
		}
		if err := write(e.Name, st.r); err != nil {
			return fail(err)
		}
	}
	l, err := layout.OpenDir(dir)
	if err != nil {
		return fail(err)
	}
	s, err := randomSource(l, l)
	if err != nil {
		l.Close()
		return fail(err)
	}
	s.close = func() error { l.Close(); return os.RemoveAll(dir) }
	return s, nil
}
