package layout

import (
	"archive/tar"
	"bytes"
	// go-digest accepts an algorithm only when its hash is linked in:
	// without these, whether sha512 blob names pass would depend on what
	// else the binary imports.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
)

// BlobPath is where a blob lives inside a layout: "blobs/<alg>/<hex>".
func BlobPath(d digest.Digest) string {
	return BlobsDir + "/" + d.Algorithm().String() + "/" + d.Encoded()
}

// ParseBlobPath returns the digest named by a "blobs/<alg>/<hex>" path. It
// accepts only algorithms go-digest knows and their canonical hex form, so a
// name that parses is also a safe relative path.
func ParseBlobPath(name string) (digest.Digest, error) {
	parts := strings.Split(name, "/")
	if len(parts) != 3 || parts[0] != BlobsDir {
		return "", fmt.Errorf("%w: %q is not of the form blobs/ALG/HEX", ErrUnsafeEntry, name)
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(parts[1]), parts[2])
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("%w: %q does not name a valid digest: %v", ErrUnsafeEntry, name, err)
	}
	return d, nil
}

// CheckName accepts only the names a layout may hold: oci-layout,
// index.json and blobs/<alg>/<hex>. Anything else, and in particular
// absolute paths, ".." and backslashes, is refused with ErrUnsafeEntry.
func CheckName(name string) error {
	switch {
	case name == LayoutFile || name == IndexFile:
		return nil
	case name == "":
		return fmt.Errorf("%w: empty name", ErrUnsafeEntry)
	case strings.HasPrefix(name, "/"):
		return fmt.Errorf("%w: %q is an absolute path", ErrUnsafeEntry, name)
	case strings.Contains(name, `\`):
		return fmt.Errorf("%w: %q contains a backslash", ErrUnsafeEntry, name)
	case hasDotDot(name):
		return fmt.Errorf("%w: %q contains \"..\"", ErrUnsafeEntry, name)
	}
	_, err := ParseBlobPath(name)
	return err
}

func hasDotDot(name string) bool {
	for _, p := range strings.Split(name, "/") {
		if p == ".." {
			return true
		}
	}
	return false
}

// isLayoutDir reports whether a directory entry is one that tools such as
// skopeo write before the blobs: ".", "blobs" or "blobs/<alg>".
func isLayoutDir(name string) bool {
	name = strings.TrimSuffix(name, "/")
	if name == "." || name == "" || name == BlobsDir {
		return true
	}
	alg, ok := strings.CutPrefix(name, BlobsDir+"/")
	return ok && digest.Algorithm(alg).Available()
}

// CompressionFromName chooses a compression from a file name's extension:
// .tar, .tar.gz or .tgz, .tar.zst or .tzst. ok is false for any other
// name, which says nothing a reader of it could rely on.
func CompressionFromName(filename string) (c Compression, ok bool) {
	n := strings.ToLower(filename)
	switch {
	case strings.HasSuffix(n, ".tar.gz"), strings.HasSuffix(n, ".tgz"):
		return Gzip, true
	case strings.HasSuffix(n, ".tar.zst"), strings.HasSuffix(n, ".tzst"):
		return Zstd, true
	case strings.HasSuffix(n, ".tar"):
		return None, true
	}
	return None, false
}

// CompressionFor is the compression of an archive named filename, given
// --compress as asked ("" for none given): the two must agree, and one of
// them must say.
func CompressionFor(filename string, asked Compression) (Compression, error) {
	byName, ok := CompressionFromName(filename)
	switch {
	case asked == "" && !ok:
		return "", fmt.Errorf("%s: the name does not say the compression: end it with .tar, .tar.gz or .tar.zst, or pass --compress", filename)
	case asked == "":
		return byName, nil
	case ok && asked != byName:
		return "", fmt.Errorf("%s names a %s archive but --compress says %s: rename the file or drop --compress", filename, byName, asked)
	}
	return ParseCompression(string(asked))
}

// ParseCompression parses the value of --compress.
func ParseCompression(s string) (Compression, error) {
	switch c := Compression(s); c {
	case None, Gzip, Zstd:
		return c, nil
	}
	return "", fmt.Errorf("unknown compression %q: use zstd, gzip or none", s)
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// DetectCompression recognises gzip and zstd by their magic bytes; anything
// else is taken for a plain tar. A zstd stream may also open with a
// skippable frame (magic 0x184D2A5?), which is zstd too.
func DetectCompression(prefix []byte) Compression {
	switch {
	case bytes.HasPrefix(prefix, gzipMagic):
		return Gzip
	case bytes.HasPrefix(prefix, zstdMagic):
		return Zstd
	case len(prefix) >= 4 && prefix[0]&0xf0 == 0x50 && prefix[1] == 0x2a && prefix[2] == 0x4d && prefix[3] == 0x18:
		return Zstd
	}
	return None
}

// classify applies the safety rules to one tar header. It returns the
// entry's canonical name, or skip for the directory entries that some
// writers add, or an error wrapping ErrUnsafeEntry.
//
// A leading "./" is tolerated because `tar -C dir -cf x.tar .` writes it,
// which is the obvious way to pack an unpacked layout by hand.
func classify(hdr *tar.Header) (name string, skip bool, err error) {
	raw := hdr.Name
	name = strings.TrimPrefix(raw, "./")
	if err := checkPAX(hdr); err != nil {
		return "", false, err
	}
	switch hdr.Typeflag {
	case tar.TypeReg: // archive/tar reports the old TypeRegA as TypeReg
		if err := CheckName(name); err != nil {
			return "", false, err
		}
		return name, false, nil
	case tar.TypeDir:
		if !isLayoutDir(name) {
			return "", false, fmt.Errorf("%w: directory %q is not part of a layout (only blobs/ and blobs/ALG/ may be)", ErrUnsafeEntry, raw)
		}
		if hdr.Size != 0 {
			// Tar readers disagree on whether a directory's size is
			// skipped: refuse what could be read two ways.
			return "", false, fmt.Errorf("%w: directory %q declares %d bytes of content", ErrUnsafeEntry, raw, hdr.Size)
		}
		return "", true, nil
	case tar.TypeSymlink:
		return "", false, fmt.Errorf("%w: %q is a symbolic link to %q", ErrUnsafeEntry, raw, hdr.Linkname)
	case tar.TypeLink:
		return "", false, fmt.Errorf("%w: %q is a hard link to %q", ErrUnsafeEntry, raw, hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock:
		return "", false, fmt.Errorf("%w: %q is a device", ErrUnsafeEntry, raw)
	case tar.TypeFifo:
		return "", false, fmt.Errorf("%w: %q is a FIFO", ErrUnsafeEntry, raw)
	case tar.TypeXGlobalHeader:
		// Other tar tools apply a global header to every later entry,
		// so what they would extract could differ from what we checked.
		return "", false, fmt.Errorf("%w: pax global header %q", ErrUnsafeEntry, raw)
	}
	return "", false, fmt.Errorf("%w: %q has tar type %q, only regular files are allowed", ErrUnsafeEntry, raw, string(hdr.Typeflag))
}

// paxKeys are the PAX records a layout entry may carry: what describes a
// file, never what changes how its bytes are read. Sparse records
// (GNU.sparse.*) above all: they make tar readers disagree on where an
// entry's content ends.
var paxKeys = map[string]bool{
	"path": true, "linkpath": true, "size": true, "uid": true, "gid": true, "uname": true, "gname": true,
	"mtime": true, "atime": true, "ctime": true, "comment": true, "charset": true, "hdrcharset": true,
}

func checkPAX(hdr *tar.Header) error {
	for k := range hdr.PAXRecords {
		if paxKeys[k] || strings.HasPrefix(k, "SCHILY.xattr.") || strings.HasPrefix(k, "LIBARCHIVE.xattr.") {
			continue
		}
		if strings.HasPrefix(k, "GNU.sparse.") {
			return fmt.Errorf("%w: %q is a sparse file (PAX record %s): only plain regular files are allowed", ErrUnsafeEntry, hdr.Name, k)
		}
		return fmt.Errorf("%w: %q carries PAX record %q, which a layout entry may not", ErrUnsafeEntry, hdr.Name, k)
	}
	return nil
}
