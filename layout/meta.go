package layout

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	digest "github.com/opencontainers/go-digest"
)

// layoutVersion is the one imageLayoutVersion the spec defines.
const layoutVersion = "1.0.0"

// indexDigestKey is where bundle's oci-layout records the digest of the
// index.json written with it: index.json cannot name its own digest, and
// oci-layout comes first, is tiny, and every reader of a layout opens it.
// Other tools read oci-layout for imageLayoutVersion only.
const indexDigestKey = "dev.bundle.index"

// LayoutInfo is what an oci-layout file says.
type LayoutInfo struct {
	Version string
	// IndexDigest is the digest bundle recorded for index.json; "" when
	// another tool wrote the layout. index.json must hash to it.
	IndexDigest digest.Digest
}

// LayoutBytes is an oci-layout without an index digest, as other tools
// write it.
func LayoutBytes() []byte {
	return []byte(`{"imageLayoutVersion":"` + layoutVersion + `"}`)
}

// bundleLayoutBytes is bundle's own oci-layout, naming index's digest.
func bundleLayoutBytes(index digest.Digest) []byte {
	return []byte(`{"imageLayoutVersion":"` + layoutVersion + `","` + indexDigestKey + `":"` + index.String() + `"}`)
}

// ParseLayoutFile reads an oci-layout file. Bundle's own form must be
// byte for byte what bundle writes, so that no change to it, not even one
// that JSON decoding forgives (case, invalid UTF-8), goes unnoticed.
func ParseLayoutFile(data []byte) (LayoutInfo, error) {
	var doc struct {
		Version string `json:"imageLayoutVersion"`
		Index   string `json:"dev.bundle.index"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return LayoutInfo{}, fmt.Errorf("oci-layout is not a valid layout file (%v): the archive is damaged or not an OCI image layout", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return LayoutInfo{}, errors.New("oci-layout has data after its JSON object: the archive is damaged")
	}
	if doc.Version != layoutVersion {
		return LayoutInfo{}, fmt.Errorf("oci-layout has imageLayoutVersion %q, want %q: the archive is damaged or of an unknown layout version", doc.Version, layoutVersion)
	}
	info := LayoutInfo{Version: doc.Version}
	if doc.Index == "" {
		return info, nil
	}
	d, err := digest.Parse(doc.Index)
	if err != nil || !bytes.Equal(data, bundleLayoutBytes(d)) {
		return LayoutInfo{}, fmt.Errorf("oci-layout: the index.json digest bundle recorded is damaged (%q): copy the bundle again", doc.Index)
	}
	info.IndexDigest = d
	return info, nil
}

// WriteMetadata writes oci-layout, recording the digest of index, and
// index.json: the first two entries of every bundle.
func (w *Writer) WriteMetadata(index []byte) error {
	if err := w.writeBytes(LayoutFile, bundleLayoutBytes(digest.FromBytes(index))); err != nil {
		return err
	}
	return w.writeBytes(IndexFile, index)
}

func (w *Writer) writeBytes(name string, data []byte) error {
	return w.WriteEntry(name, int64(len(data)), bytes.NewReader(data), false)
}
