package graph

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Bounds on one document. encoding/json would allocate about 120 bytes
// per element of a descriptor array whatever the element is, so a 4 MiB
// manifest of "[{},{},...]" becomes hundreds of megabytes: the lists are
// decoded one element at a time and counted instead.
const (
	// MaxDescriptors bounds the descriptors (config, layers, manifests,
	// blobs) of one manifest or index other than index.json.
	MaxDescriptors = 10_000
	// MaxIndexEntries bounds the entries of index.json: every image and
	// referrer of a bundle within DefaultLimits.
	MaxIndexEntries = 40_000
	// maxDescriptorSize bounds the JSON of one descriptor.
	maxDescriptorSize = 64 << 10
	// maxAnnotations bounds the annotations of one manifest or index.
	maxAnnotations = 4096
)

// ErrTooComplex is wrapped by errors for documents over one of the bounds.
var ErrTooComplex = errors.New("document over a limit")

// decode reads a manifest, index or artifact manifest. It refuses keys
// that appear twice or differ from a known key only by case (which
// encoding/json would silently merge), lists over maxList elements, and
// data after the document.
func decode(data []byte, maxList int) (*Manifest, error) {
	d := &decoder{dec: json.NewDecoder(bytes.NewReader(data)), maxList: maxList}
	m, err := d.manifest()
	if err != nil {
		return nil, err
	}
	if _, err := d.dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the JSON document")
	}
	return m, nil
}

type decoder struct {
	dec     *json.Decoder
	maxList int
	listed  int // descriptors in the lists so far
}

var manifestKeys = []string{"schemaVersion", "mediaType", "artifactType", "config", "layers", "manifests", "blobs", "subject", "refers", "annotations", "fsLayers"}

func (d *decoder) manifest() (*Manifest, error) {
	if err := d.delim('{'); err != nil {
		return nil, err
	}
	m := &Manifest{}
	seen := map[string]bool{}
	for d.dec.More() {
		tok, err := d.dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		if seen[key] {
			return nil, fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		if err := checkCase(key); err != nil {
			return nil, err
		}
		switch key {
		case "schemaVersion":
			err = d.dec.Decode(&m.SchemaVersion)
		case "mediaType":
			err = d.dec.Decode(&m.MediaType)
		case "artifactType":
			err = d.dec.Decode(&m.ArtifactType)
		case "config":
			m.Config, err = d.descriptor()
		case "subject":
			m.Subject, err = d.descriptor()
		case "refers":
			m.Refers, err = d.descriptor()
		case "layers":
			m.Layers, err = d.list(key)
		case "manifests":
			m.Manifests, err = d.list(key)
		case "blobs":
			m.Blobs, err = d.list(key)
		case "annotations":
			m.Annotations, err = d.annotations()
		case "fsLayers":
			m.FSLayers = []json.RawMessage{nil}
			err = d.skip()
		default:
			err = d.skip()
		}
		if err != nil {
			return nil, fmt.Errorf("%q: %w", key, err)
		}
	}
	return m, d.delim('}')
}

// checkCase refuses a key that encoding/json would take for a known one.
func checkCase(key string) error {
	for _, k := range manifestKeys {
		if key != k && strings.EqualFold(key, k) {
			return fmt.Errorf("key %q differs from %q only by case", key, k)
		}
	}
	return nil
}

func (d *decoder) delim(want json.Delim) error {
	tok, err := d.dec.Token()
	if err != nil {
		return err
	}
	if got, ok := tok.(json.Delim); !ok || got != want {
		return fmt.Errorf("want %q, got %v", want, tok)
	}
	return nil
}

// raw reads the next value whole, at most maxDescriptorSize bytes of it.
func (d *decoder) raw() (json.RawMessage, error) {
	var raw json.RawMessage
	if err := d.dec.Decode(&raw); err != nil {
		return nil, err
	}
	if len(raw) > maxDescriptorSize {
		return nil, fmt.Errorf("%w: a value of %d bytes where a descriptor of at most %d is expected", ErrTooComplex, len(raw), maxDescriptorSize)
	}
	return raw, nil
}

func (d *decoder) descriptor() (*ocispec.Descriptor, error) {
	raw, err := d.raw()
	if err != nil || string(raw) == "null" {
		return nil, err
	}
	if raw[0] != '{' {
		return nil, fmt.Errorf("a descriptor must be a JSON object, got %.20s", raw)
	}
	var desc ocispec.Descriptor
	if err := json.Unmarshal(raw, &desc); err != nil {
		return nil, err
	}
	return &desc, nil
}

func (d *decoder) list(key string) ([]ocispec.Descriptor, error) {
	tok, err := d.dec.Token()
	if err != nil || tok == nil {
		return nil, err
	}
	if delim, ok := tok.(json.Delim); !ok || delim != '[' {
		return nil, fmt.Errorf("want a list, got %v", tok)
	}
	var out []ocispec.Descriptor
	for d.dec.More() {
		if d.listed++; d.listed > d.maxList {
			return nil, fmt.Errorf("%w: more than %d descriptors", ErrTooComplex, d.maxList)
		}
		desc, err := d.descriptor()
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", len(out), err)
		}
		if desc == nil {
			return nil, fmt.Errorf("element %d is null", len(out))
		}
		out = append(out, *desc)
	}
	return out, d.delim(']')
}

func (d *decoder) annotations() (map[string]string, error) {
	tok, err := d.dec.Token()
	if err != nil || tok == nil {
		return nil, err
	}
	if delim, ok := tok.(json.Delim); !ok || delim != '{' {
		return nil, fmt.Errorf("want an object, got %v", tok)
	}
	out := map[string]string{}
	for d.dec.More() {
		if len(out) >= maxAnnotations {
			return nil, fmt.Errorf("%w: more than %d annotations", ErrTooComplex, maxAnnotations)
		}
		k, err := d.dec.Token()
		if err != nil {
			return nil, err
		}
		var v string
		if err := d.dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("annotation %v: %w", k, err)
		}
		out[k.(string)] = v
	}
	return out, d.delim('}')
}

// skip reads past a value without keeping it.
func (d *decoder) skip() error {
	depth := 0
	for {
		tok, err := d.dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}
