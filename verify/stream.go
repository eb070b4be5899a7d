package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/layout"
)

// stream is a bundle read front to back: gzip, zstd without a seek table,
// standard input. Bundle writes oci-layout, index.json and the manifests
// before every other blob, so their end is where import starts pushing.
// Another tool's order is read twice when it comes from a file, and
// spooled to a directory when it comes from standard input.
type stream struct {
	r      *layout.Reader
	kept   []keptManifest // manifests read while opening, in order
	first  *layout.Entry  // the first entry not read while opening
	data   []byte         // its content, when it was read to look at it
	done   bool           // the stream ended while opening
	reopen func() (io.Reader, error)
	size   int64
	second bool // metadata came from a first pass: Blobs reads from the start
	// meta, when set, takes the oci-layout and index.json met among the
	// blobs (a spool needs them); otherwise they are skipped.
	meta *metadata
}

type keptManifest struct {
	e    layout.Entry
	d    digest.Digest
	data []byte
}

// collected is what a pass learns of a stream's metadata.
type collected struct {
	meta    metadata
	kept    map[digest.Digest][]byte
	damaged map[digest.Digest]error
	bytes   int64
	limits  graph.Limits
}

// keep holds a manifest-looking blob for the graph, within the limits.
func (c *collected) keep(d digest.Digest, data []byte) error {
	if _, dup := c.kept[d]; dup {
		return nil
	}
	c.bytes += int64(len(data))
	if len(c.kept) >= c.limits.Manifests || c.bytes > c.limits.ManifestBytes {
		return fmt.Errorf("%w: more than %d manifests or %d bytes of them", graph.ErrLimit, c.limits.Manifests, c.limits.ManifestBytes)
	}
	c.kept[d] = data
	return nil
}

// small reads a blob small enough to be a manifest, checked against its
// name. A blob that does not match is remembered as damaged, not fatal:
// it fails whatever needs it.
func (c *collected) small(e layout.Entry, d digest.Digest, r io.Reader) ([]byte, error) {
	data, err := graph.ReadAll(NewReader(r, ocispec.Descriptor{Digest: d, Size: e.Size}))
	if errors.Is(err, ErrMismatch) {
		c.damaged[d] = err
		return nil, nil
	}
	return data, err
}

func (c *collected) get(d ocispec.Descriptor) ([]byte, error) {
	if data, ok := c.kept[d.Digest]; ok {
		if int64(len(data)) != d.Size {
			return nil, &MismatchError{Digest: d.Digest, Size: d.Size, GotSize: int64(len(data)), GotDigest: d.Digest}
		}
		return data, nil
	}
	if err := c.damaged[d.Digest]; err != nil {
		return nil, err
	}
	return nil, graph.ErrAbsent
}

func openStream(ctx context.Context, path string, in io.Reader, size int64, reopen func() (io.Reader, error), opts Options) (*Bundle, error) {
	r, err := layout.NewReader(in, size)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	b := &Bundle{Path: path, Compression: r.Compression(), Size: size, Order: map[digest.Digest]int{}}
	st := &stream{r: r, reopen: reopen, size: size}
	c := &collected{kept: map[digest.Digest][]byte{}, damaged: map[digest.Digest]error{}, limits: opts.limits()}
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			st.done = true
			break
		}
		if err != nil {
			return nil, fmt.Errorf("bundle %s: %w", path, err)
		}
		if e.Name == layout.LayoutFile || e.Name == layout.IndexFile {
			b.meta = append(b.meta, e)
			if err := c.meta.read(e, r); err != nil {
				return nil, fmt.Errorf("bundle %s: %w", path, err)
			}
			continue
		}
		d, _ := layout.ParseBlobPath(e.Name) // the reader refuses other names
		b.Order[d] = n
		if e.Size > graph.MaxManifestSize {
			st.first = &e
			break
		}
		data, err := c.small(e, d, r)
		if err != nil {
			return nil, fmt.Errorf("bundle %s: %w", path, err)
		}
		if data == nil || !looksLikeManifest(data) {
			st.first, st.data = &e, data
			break
		}
		if err := c.keep(d, data); err != nil {
			return nil, fmt.Errorf("bundle %s: %w", path, err)
		}
		st.kept = append(st.kept, keptManifest{e: e, d: d, data: data})
	}
	b.stream = st
	// The metadata is complete when it all came first: always in bundle's
	// own archives, and in another tool's when every manifest it leads to
	// was there. Otherwise a manifest may hide among the blobs.
	if c.meta.layoutSeen && c.meta.indexSeen && (c.meta.info.IndexDigest != "" || st.done) {
		return b, b.loadStream(ctx, c, opts)
	}
	if c.meta.layoutSeen && c.meta.indexSeen && c.meta.layoutErr == nil {
		if err := b.loadStream(ctx, c, opts); err == nil && complete(b.Graph) {
			return b, nil
		}
	}
	if reopen == nil {
		return spool(ctx, b, c, opts)
	}
	if err := st.firstPass(ctx, b, c); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	return b, b.loadStream(ctx, c, opts)
}

// loadStream checks the metadata a stream gave and loads its graph.
func (b *Bundle) loadStream(ctx context.Context, c *collected, opts Options) error {
	index, info, err := c.meta.finish()
	if err != nil {
		return fmt.Errorf("bundle %s: %w", b.Path, err)
	}
	b.Info = info
	if b.Graph, err = graph.Load(ctx, index, c.get, opts.limits()); err != nil {
		return fmt.Errorf("bundle %s: %w", b.Path, err)
	}
	return nil
}

// complete reports whether every manifest the graph leads to was read.
func complete(g *graph.Graph) bool {
	for _, n := range g.Nodes() {
		if errors.Is(n.Err, graph.ErrAbsent) {
			return false
		}
	}
	return true
}

// firstPass reads the rest of a file in another tool's order for its
// metadata; Blobs then reads it again from the start.
func (st *stream) firstPass(ctx context.Context, b *Bundle, c *collected) error {
	b.Present = map[digest.Digest]int64{}
	for _, k := range st.kept {
		b.Present[k.d] = k.e.Size
	}
	n := len(b.Order)
	if st.first != nil {
		d, _ := layout.ParseBlobPath(st.first.Name)
		b.Present[d] = st.first.Size
	}
	for ; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		e, err := st.r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if e.Name == layout.LayoutFile || e.Name == layout.IndexFile {
			if err := c.meta.read(e, st.r); err != nil {
				return err
			}
			continue
		}
		d, _ := layout.ParseBlobPath(e.Name)
		b.Order[d] = n
		b.Present[d] = e.Size
		if e.Size > graph.MaxManifestSize {
			continue
		}
		data, err := c.small(e, d, st.r)
		if err != nil {
			return err
		}
		if data != nil && looksLikeManifest(data) {
			if err := c.keep(d, data); err != nil {
				return err
			}
		}
	}
	st.second, st.kept, st.first, st.data = true, nil, nil, nil
	return nil
}

// blobs gives every blob of the stream to fn, in archive order.
func (st *stream) blobs(ctx context.Context, b *Bundle, fn BlobFunc) error {
	if st.second {
		in, err := st.reopen()
		if err != nil {
			return fmt.Errorf("bundle %s: reading it again: %w", b.Path, err)
		}
		if st.r, err = layout.NewReader(in, st.size); err != nil {
			return fmt.Errorf("bundle %s: %w", b.Path, err)
		}
		st.second = false
		return st.rest(ctx, b, fn)
	}
	if b.Present == nil {
		b.Present = map[digest.Digest]int64{}
	}
	for _, k := range st.kept {
		b.Present[k.d] = k.e.Size
		if err := fn(k.e, k.d, bytes.NewReader(k.data)); err != nil {
			return err
		}
	}
	st.kept = nil
	if st.first != nil {
		e := *st.first
		d, _ := layout.ParseBlobPath(e.Name)
		b.Present[d] = e.Size
		var r io.Reader = st.r
		if st.data != nil {
			r = bytes.NewReader(st.data)
		}
		st.first, st.data = nil, nil
		if err := fn(e, d, r); err != nil {
			return err
		}
	}
	if st.done {
		return nil
	}
	return st.rest(ctx, b, fn)
}

// rest reads the entries left in the stream.
func (st *stream) rest(ctx context.Context, b *Bundle, fn BlobFunc) error {
	n := len(b.Order)
	for ; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		e, err := st.r.Next()
		if errors.Is(err, io.EOF) {
			st.done = true
			return nil
		}
		if err != nil {
			return fmt.Errorf("bundle %s: %w", b.Path, err)
		}
		if e.Name == layout.LayoutFile || e.Name == layout.IndexFile {
			if st.meta != nil {
				if err := st.meta.read(e, st.r); err != nil {
					return err
				}
			}
			continue
		}
		d, _ := layout.ParseBlobPath(e.Name)
		if _, ok := b.Order[d]; !ok {
			b.Order[d] = n
		}
		b.Present[d] = e.Size
		if err := fn(e, d, st.r); err != nil {
			return err
		}
	}
}

// spool writes a stream from standard input in another tool's order to a
// directory, then opens that. It writes exactly the entries the stream
// holds, each checked by the reader to be as long as its header says; the
// directory is removed on Close. Bundle's own archives are never spooled.
func spool(ctx context.Context, b *Bundle, c *collected, opts Options) (*Bundle, error) {
	dir, err := spoolDir(opts)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Bundle, error) {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("spooling %s to %s (a layout in another tool's order, from a stream; set TMPDIR to a disk with room, or import from a file): %w", b.Path, dir, err)
	}
	if opts.Notice != nil {
		opts.Notice("%s does not list its metadata first: spooling it to %s", b.Path, dir)
	}
	st := b.stream
	st.meta = &c.meta
	b.Present = map[digest.Digest]int64{}
	err = st.blobs(ctx, b, func(e layout.Entry, d digest.Digest, r io.Reader) error {
		return spoolWrite(dir, e.Name, r)
	})
	if err != nil {
		return fail(err)
	}
	for name, data := range map[string][]byte{layout.LayoutFile: c.meta.layout, layout.IndexFile: c.meta.index} {
		if data != nil {
			if err := spoolWrite(dir, name, bytes.NewReader(data)); err != nil {
				return fail(err)
			}
		}
	}
	d, err := layout.OpenDir(dir)
	if err != nil {
		return fail(err)
	}
	out := &Bundle{Path: b.Path, Compression: b.Compression, Random: true, Spooled: true, Size: -1, random: d,
		closers: []func() error{func() error { d.Close(); return os.RemoveAll(dir) }}}
	if err := out.openRandom(ctx, d.Entries(), opts); err != nil {
		out.Close()
		return nil, err
	}
	out.metaRead = st.r.Offset() // the whole stream, to spool it
	return out, nil
}
