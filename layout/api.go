package layout

import (
	"errors"
	"io"
)

// Names inside a layout.
const (
	LayoutFile = "oci-layout"
	IndexFile  = "index.json"
	BlobsDir   = "blobs"

	// MaxIndexSize bounds index.json: room for graph.MaxIndexEntries
	// entries of long names and annotations.
	MaxIndexSize = 32 << 20
)

// Compression of a tar stream.
type Compression string

const (
	None Compression = "none"
	Gzip Compression = "gzip"
	Zstd Compression = "zstd"
)

// ErrNotSeekable is returned by OpenArchive for streams that cannot be read
// at random (gzip, zstd without a seek table); read them with NewReader.
var ErrNotSeekable = errors.New("archive is not seekable")

// ErrUnsafeEntry marks an entry refused by the safety rules (absolute path,
// "..", a link, a device, a name outside oci-layout, index.json, blobs/ALG/HEX,
// a duplicate). Errors wrapping it name the entry.
var ErrUnsafeEntry = errors.New("unsafe entry")

// Layout gives random access to the entries of a layout: a seekable archive
// or a directory. Open is safe for concurrent use.
type Layout interface {
	Entries() []Entry // in archive order
	Open(name string) (io.ReadCloser, error)
}
