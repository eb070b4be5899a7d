package layout

// Limits of what the reader accepts. An archive from outside is hostile
// until checked: each limit keeps a few kilobytes of input from costing
// more than linear time or more than bounded memory, and every error that
// hits one names it. docs/LIMITS.md lists them with the graph's limits.
const (
	// MaxEntries bounds the entries of one archive, directories included:
	// the reader keeps every name to refuse duplicates. A bundle of 10,000
	// small signed images holds about 70,000.
	MaxEntries = 500_000
	// maxEntrySize keeps offset arithmetic far from overflow; no blob
	// comes near it.
	maxEntrySize = 1 << 50
	// maxTrailing bounds what may follow the tar end-of-archive marker
	// (zero padding: GNU tar pads to a 10 KiB record).
	maxTrailing = 1 << 20
	// maxWindow matches the default limit of the zstd command line tool.
	maxWindow = 128 << 20
	tarBlock  = 512
)

// maxRatio is the most one compressed byte can expand to: 1 for a plain
// tar, deflate's 1032 for gzip, and about 32,768 for zstd, whose RLE
// blocks describe 128 KiB in four bytes. What entries declare in a stream
// of known size may not exceed its size times this.
func maxRatio(c Compression) int64 {
	switch c {
	case Gzip:
		return 1032
	case Zstd:
		return 32768
	}
	return 1
}
