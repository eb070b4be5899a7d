package layout

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// Archive gives random access to a layout tar: plain, or zstd with a seek
// table. Its listing is one pass of the same Reader every other path uses,
// skipping content by seeking: it reads the tar headers (and decodes the
// frames that hold them), never the content.
type Archive struct {
	ra      *countingReaderAt
	size    int64
	comp    Compression
	z       *seekable // nil for a plain tar
	entries []Entry
	byName  map[string]int
}

// OpenArchive lists the archive in ra of the given size. Gzip archives and
// zstd archives without a seek table cannot be read at random: it returns
// an error wrapping ErrNotSeekable for them; read those with NewReader.
func OpenArchive(ra io.ReaderAt, size int64) (*Archive, error) {
	cr := &countingReaderAt{ra: ra}
	r, err := NewSeekableReader(cr, size)
	if err != nil {
		return nil, err
	}
	a := &Archive{ra: cr, size: size, comp: r.comp, z: r.z, byName: map[string]int{}}
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			return a, nil
		}
		if err != nil {
			return nil, err
		}
		a.byName[e.Name] = len(a.entries)
		a.entries = append(a.entries, e)
	}
}

// Entries lists the regular files in archive order.
func (a *Archive) Entries() []Entry { return append([]Entry(nil), a.entries...) }

// Entry returns the entry called name.
func (a *Archive) Entry(name string) (Entry, bool) {
	i, ok := a.byName[name]
	if !ok {
		return Entry{}, false
	}
	return a.entries[i], true
}

// Compression is the archive's compression (None or Zstd).
func (a *Archive) Compression() Compression { return a.comp }

// Size is the archive file's size.
func (a *Archive) Size() int64 { return a.size }

// BytesRead is how many bytes were read from the underlying ReaderAt so far.
func (a *Archive) BytesRead() int64 { return a.ra.n.Load() }

// Open returns the content of one entry. It is safe for concurrent use;
// for zstd it decompresses only the frames that hold the entry.
func (a *Archive) Open(name string) (io.ReadCloser, error) {
	i, ok := a.byName[name]
	if !ok {
		return nil, fmt.Errorf("open %s in archive: %w", name, fs.ErrNotExist)
	}
	e := a.entries[i]
	if a.z == nil {
		return io.NopCloser(io.NewSectionReader(a.ra, e.Offset, e.Size)), nil
	}
	return a.z.stream(e.Offset, e.Offset+e.Size, name), nil
}
