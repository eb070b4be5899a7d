package verify

import (
	"bufio"
	"bytes"
	"context"
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

// Options for Open, Check and Inspect.
type Options struct {
	Stdin io.Reader // read when the file is "-"
	// TempDir is where a stream whose metadata does not come first (other
	// tools' order) is spooled; "" means the system's.
	TempDir string
	Limits  graph.Limits // zero means graph.DefaultLimits
	Notice  func(format string, args ...any)
}

func (o Options) limits() graph.Limits {
	if o.Limits == (graph.Limits{}) {
		return graph.DefaultLimits
	}
	return o.Limits
}

// Bundle is an opened bundle: its metadata read and checked, its graph
// loaded, and a way to its blobs. verify, inspect, import and serve all
// open bundles here, so that what one approves the others use.
type Bundle struct {
	Path        string
	Compression layout.Compression
	// Random says blobs can be opened in any order (a plain or seekable
	// zstd archive, a directory); otherwise they come by Blobs, once.
	Random bool
	// Spooled says a stream in another tool's order was written to a
	// temporary directory to read it at random.
	Spooled bool
	Size    int64 // of the archive file; -1 for standard input
	Info    layout.LayoutInfo
	Graph   *graph.Graph
	// Present lists the blobs the bundle holds with their sizes; for a
	// stream, only once Blobs has run.
	Present map[digest.Digest]int64
	// Order is each blob's place among the archive's entries.
	Order map[digest.Digest]int

	random   layout.Layout
	meta     []layout.Entry  // oci-layout and index.json as read
	archive  *layout.Archive // random and an archive file
	metaRead int64           // bytes of a directory read to open it
	stream   *stream
	closers  []func() error
	served   servedState // what OpenServed knows of the blobs
}

// Written reports whether bundle wrote the archive: its oci-layout
// records the digest of its index.json.
func (b *Bundle) Written() bool { return b.Info.IndexDigest != "" }

// BytesRead is how much of the archive file was read so far, when known.
func (b *Bundle) BytesRead() int64 {
	if b.archive != nil {
		return b.archive.BytesRead()
	}
	if b.stream != nil {
		return b.stream.r.Offset()
	}
	return b.metaRead
}

// Close releases the file and any spool.
func (b *Bundle) Close() error {
	var first error
	for i := len(b.closers) - 1; i >= 0; i-- {
		if err := b.closers[i](); err != nil && first == nil {
			first = err
		}
	}
	b.closers = nil
	return first
}

// Open returns blob d, checked against its digest and size as it is read.
// Only for a Random bundle.
func (b *Bundle) Open(d ocispec.Descriptor) (io.ReadCloser, error) {
	if b.random == nil {
		return nil, fmt.Errorf("blob %s: the bundle is a stream and cannot be read out of order", d.Digest)
	}
	if _, ok := b.Present[d.Digest]; !ok {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, graph.ErrAbsent)
	}
	rc, err := b.random.Open(layout.BlobPath(d.Digest))
	if err != nil {
		return nil, err
	}
	return readCloser{NewReader(rc, d), rc}, nil
}

type countingReader struct {
	r io.Reader
	n *int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}

type readCloser struct {
	io.Reader
	io.Closer
}

// BlobFunc receives one blob of a stream; r is unchecked, and must be read
// through NewReader by whoever needs the content.
type BlobFunc func(e layout.Entry, d digest.Digest, r io.Reader) error

// Blobs calls fn for every blob of the bundle in archive order: for a
// stream the rest of it, read once; for a random bundle each entry opened
// in turn. It fills Present for a stream. Manifests read while opening are
// given again, from memory.
func (b *Bundle) Blobs(ctx context.Context, fn BlobFunc) error {
	if b.random != nil {
		for _, e := range b.random.Entries() {
			if err := ctx.Err(); err != nil {
				return err
			}
			d, err := layout.ParseBlobPath(e.Name)
			if err != nil {
				continue
			}
			rc, err := b.random.Open(e.Name)
			if err != nil {
				return err
			}
			err = fn(e, d, rc)
			rc.Close()
			if err != nil {
				return err
			}
		}
		return nil
	}
	return b.stream.blobs(ctx, b, fn)
}

// Open opens the bundle at path ("-" for opts.Stdin): reads oci-layout and
// index.json, checks index.json against the digest bundle recorded, and
// loads the graph. Damage that leaves no graph to work with is an error;
// what is wrong with one image is kept on its node.
func Open(ctx context.Context, path string, opts Options) (*Bundle, error) {
	if path == "-" {
		if opts.Stdin == nil {
			return nil, errors.New("reading the bundle from standard input, but there is none")
		}
		return openStream(ctx, path, opts.Stdin, -1, nil, opts)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open bundle: %w: check the path", err)
	}
	if fi.IsDir() {
		d, err := layout.OpenDir(path)
		if err != nil {
			return nil, err
		}
		b := &Bundle{Path: path, Compression: layout.None, Random: true, Size: -1, random: d, closers: []func() error{d.Close}}
		return b, closeOnError(b, b.openRandom(ctx, d.Entries(), opts))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open bundle: %w: check the path", err)
	}
	a, err := layout.OpenArchive(f, fi.Size())
	if err == nil {
		b := &Bundle{Path: path, Compression: a.Compression(), Random: true, Size: fi.Size(), random: a, archive: a, closers: []func() error{f.Close}}
		return b, closeOnError(b, b.openRandom(ctx, a.Entries(), opts))
	}
	if !errors.Is(err, layout.ErrNotSeekable) {
		f.Close()
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	reopen := func() (io.Reader, error) {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		return bufio.NewReaderSize(f, 1<<20), nil
	}
	b, err := openStream(ctx, path, bufio.NewReaderSize(f, 1<<20), fi.Size(), reopen, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	b.closers = append([]func() error{f.Close}, b.closers...)
	return b, nil
}

func closeOnError(b *Bundle, err error) error {
	if err != nil {
		b.Close()
	}
	return err
}

// openRandom reads the metadata of a listed layout.
func (b *Bundle) openRandom(ctx context.Context, entries []layout.Entry, opts Options) error {
	b.Present = map[digest.Digest]int64{}
	b.Order = map[digest.Digest]int{}
	m := &metadata{}
	for i, e := range entries {
		switch e.Name {
		case layout.LayoutFile, layout.IndexFile:
			b.meta = append(b.meta, e)
			rc, err := b.random.Open(e.Name)
			if err != nil {
				return err
			}
			err = m.read(e, &countingReader{r: rc, n: &b.metaRead})
			rc.Close()
			if err != nil {
				return fmt.Errorf("bundle %s: %w", b.Path, err)
			}
		default:
			if d, err := layout.ParseBlobPath(e.Name); err == nil {
				b.Present[d] = e.Size
				b.Order[d] = i
			}
		}
	}
	index, info, err := m.finish()
	if err != nil {
		return fmt.Errorf("bundle %s: %w", b.Path, err)
	}
	b.Info = info
	get := func(d ocispec.Descriptor) ([]byte, error) {
		if _, ok := b.Present[d.Digest]; !ok {
			return nil, graph.ErrAbsent
		}
		if d.Size > graph.MaxManifestSize {
			return nil, graph.ErrTooLarge
		}
		rc, err := b.Open(d)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return graph.ReadAll(&countingReader{r: rc, n: &b.metaRead})
	}
	b.Graph, err = graph.Load(ctx, index, get, opts.limits())
	if err != nil {
		return fmt.Errorf("bundle %s: %w", b.Path, err)
	}
	return nil
}

// metadata is what oci-layout and index.json say, in whatever order they
// come.
type metadata struct {
	layoutSeen, indexSeen bool
	info                  layout.LayoutInfo
	layout, index         []byte
	layoutErr, indexErr   error
}

func (m *metadata) read(e layout.Entry, r io.Reader) error {
	switch e.Name {
	case layout.LayoutFile:
		m.layoutSeen = true
		data, err := readBounded(r, 64<<10, e.Name)
		if err != nil {
			return err
		}
		m.layout = data
		m.info, m.layoutErr = layout.ParseLayoutFile(data)
	case layout.IndexFile:
		m.indexSeen = true
		data, err := readBounded(r, layout.MaxIndexSize, e.Name)
		if err != nil {
			return err
		}
		m.index = data
	}
	return nil
}

func readBounded(r io.Reader, limit int64, name string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d MiB: refused as a hostile or broken layout", name, limit>>20)
	}
	return data, nil
}

// finish checks what was read: both files present and sound, index.json
// what oci-layout says it is.
func (m *metadata) finish() (*graph.Manifest, layout.LayoutInfo, error) {
	switch {
	case !m.layoutSeen:
		return nil, m.info, errors.New("no oci-layout file: this is not an OCI image layout archive")
	case m.layoutErr != nil:
		return nil, m.info, m.layoutErr
	case !m.indexSeen:
		return nil, m.info, errors.New("no index.json: nothing says which images the bundle holds; export it again")
	}
	if want := m.info.IndexDigest; want != "" {
		if got := digest.FromBytes(m.index); got != want {
			return nil, m.info, fmt.Errorf("index.json hashes to %s but oci-layout records %s: the bundle is damaged; copy it again", got, want)
		}
	}
	idx, err := parseIndex(m.index)
	return idx, m.info, err
}

// parseIndex decodes index.json and checks that it is an index that lists
// something.
func parseIndex(data []byte) (*graph.Manifest, error) {
	m, err := graph.ParseIndex(data)
	if err != nil {
		return nil, fmt.Errorf("index.json is not a valid image index: %w; export the bundle again", err)
	}
	if m.SchemaVersion != 2 {
		return nil, fmt.Errorf("index.json has schemaVersion %d, want 2: export the bundle again", m.SchemaVersion)
	}
	if !graph.IsIndex(m.MediaType) {
		return nil, fmt.Errorf("index.json has media type %q, want %s: export the bundle again", m.MediaType, ocispec.MediaTypeImageIndex)
	}
	if len(m.Manifests) == 0 {
		return nil, errors.New("index.json lists nothing: the bundle holds no image; export it again")
	}
	for i, d := range m.Manifests {
		if err := d.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("index.json manifests[%d] has an invalid digest %q: %v", i, d.Digest, err)
		}
		if d.Size < 0 {
			return nil, fmt.Errorf("index.json manifests[%d] (%s) has a negative size", i, d.Digest)
		}
	}
	return m, nil
}

// looksLikeManifest tells a manifest or index from other JSON (a config),
// with the parser that loads the graph.
func looksLikeManifest(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && graph.IsDocument(data)
}

// tempDir is where to spool.
func (o Options) tempDir() string {
	if o.TempDir != "" {
		return o.TempDir
	}
	return os.TempDir()
}

// spoolDir makes a fresh directory for a spool.
func spoolDir(o Options) (string, error) {
	dir, err := os.MkdirTemp(o.tempDir(), "bundle-spool-*")
	if err != nil {
		return "", fmt.Errorf("creating a spool directory in %s: %w (set TMPDIR to a disk with room)", o.tempDir(), err)
	}
	return dir, nil
}

// spoolWrite writes one entry of a layout into dir, refusing to replace
// anything.
func spoolWrite(dir, name string, r io.Reader) error {
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
