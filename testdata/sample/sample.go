// Package sample builds, in code, a small deterministic OCI image layout
// that exercises what bundle carries: a two-platform index and a
// single-platform image sharing a base layer, each with a signature and an
// SBOM referrer, and a signature on one SBOM (a referrer tree).
package sample

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	_ "crypto/sha256" // go-digest hashes with the registered sha256
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Source registry the sample images claim to come from; import drops the
// host, so they land as <target>/demo/multi:1.0 and <target>/demo/single:1.0.
const (
	MultiRef  = "registry.example/demo/multi:1.0"
	SingleRef = "registry.example/demo/single:1.0"
)

// Artifact types of the sample referrers.
const (
	ArtifactTypeSignature = "application/vnd.dev.sigstore.bundle.v0.3+json"
	ArtifactTypeSBOM      = "application/spdx+json"
)

// Layout is what Write produced: the descriptors tests look for.
type Layout struct {
	Multi, Single ocispec.Descriptor   // the tagged images (index, manifest)
	Platforms     []ocispec.Descriptor // the index's children
	Referrers     []ocispec.Descriptor // every referrer manifest
	// SubjectOf maps a referrer's digest to its subject's.
	SubjectOf map[digest.Digest]digest.Digest
}

// Write writes the sample layout into dir (created if missing). The same
// call writes the same bytes every time.
func Write(dir string) (*Layout, error) {
	w := &writer{dir: dir, rng: rand.New(rand.NewPCG(2024, 11))}
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return nil, fmt.Errorf("sample: creating %s: %w", dir, err)
	}
	out, err := w.build()
	if err != nil {
		return nil, fmt.Errorf("sample: writing %s: %w", dir, err)
	}
	return out, nil
}

type writer struct {
	dir string
	rng *rand.Rand
}

func (w *writer) build() (*Layout, error) {
	base, baseDiff, err := w.layer("base.bin", 64<<10)
	if err != nil {
		return nil, err
	}
	out := &Layout{SubjectOf: map[digest.Digest]digest.Digest{}}
	for _, arch := range []string{"amd64", "arm64"} {
		m, err := w.image(ocispec.Platform{OS: "linux", Architecture: arch}, base, baseDiff)
		if err != nil {
			return nil, err
		}
		out.Platforms = append(out.Platforms, m)
	}
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: out.Platforms}
	if out.Multi, err = w.json(ocispec.MediaTypeImageIndex, idx); err != nil {
		return nil, err
	}
	if out.Single, err = w.image(ocispec.Platform{OS: "linux", Architecture: "amd64"}, base, baseDiff); err != nil {
		return nil, err
	}
	for i, subject := range []ocispec.Descriptor{out.Multi, out.Single} {
		sig, err := w.referrer(subject, ArtifactTypeSignature, "signature")
		if err != nil {
			return nil, err
		}
		sbom, err := w.referrer(subject, ArtifactTypeSBOM, "sbom")
		if err != nil {
			return nil, err
		}
		out.add(subject, sig, sbom)
		if i == 0 { // a signature on an SBOM: the tree is two deep
			sbomSig, err := w.referrer(sbom, ArtifactTypeSignature, "signature of sbom")
			if err != nil {
				return nil, err
			}
			out.add(sbom, sbomSig)
		}
	}
	return out, w.index(out)
}

func (l *Layout) add(subject ocispec.Descriptor, refs ...ocispec.Descriptor) {
	for _, r := range refs {
		l.Referrers = append(l.Referrers, r)
		l.SubjectOf[r.Digest] = subject.Digest
	}
}

// image writes a one-platform image: the shared base layer and its own.
func (w *writer) image(p ocispec.Platform, base ocispec.Descriptor, baseDiff digest.Digest) (ocispec.Descriptor, error) {
	own, ownDiff, err := w.layer("app-"+p.Architecture+".bin", 8<<10)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	cfg := ocispec.Image{
		Created:  ptr(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)),
		Platform: p,
		Config:   ocispec.ImageConfig{Cmd: []string{"/app"}},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{baseDiff, ownDiff}},
	}
	cd, err := w.json(ocispec.MediaTypeImageConfig, cfg)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cd,
		Layers:    []ocispec.Descriptor{base, own},
	}
	d, err := w.json(ocispec.MediaTypeImageManifest, m)
	d.Platform = &p
	return d, err
}

// referrer writes an artifact manifest (image manifest form, empty config)
// whose subject is subject.
func (w *writer) referrer(subject ocispec.Descriptor, artifactType, what string) (ocispec.Descriptor, error) {
	payload := fmt.Appendf(nil, `{"%s":"%s"}`, what, subject.Digest)
	pd, err := w.blob(artifactType, payload)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	empty, err := w.blob(ocispec.MediaTypeEmptyJSON, ocispec.DescriptorEmptyJSON.Data)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	empty.Data = ocispec.DescriptorEmptyJSON.Data
	subj := ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	m := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: artifactType,
		Config:       empty,
		Layers:       []ocispec.Descriptor{pd},
		Subject:      &subj,
		Annotations:  map[string]string{ocispec.AnnotationCreated: "2024-01-01T00:00:00Z"},
	}
	d, err := w.json(ocispec.MediaTypeImageManifest, m)
	d.ArtifactType = artifactType
	return d, err
}

// layer writes a gzip tar layer holding one file of n pseudo-random bytes
// and returns its descriptor and diff ID.
func (w *writer) layer(name string, n int) (ocispec.Descriptor, digest.Digest, error) {
	content := make([]byte, n)
	for i := range content {
		content[i] = byte(w.rng.UintN(256))
	}
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(n), ModTime: time.Unix(0, 0).UTC(), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	if _, err := tw.Write(content); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	if err := tw.Close(); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz) // zero header: no name, no time, so the bytes are stable
	if _, err := zw.Write(tarBuf.Bytes()); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	if err := zw.Close(); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	d, err := w.blob(ocispec.MediaTypeImageLayerGzip, gz.Bytes())
	return d, digest.FromBytes(tarBuf.Bytes()), err
}

func (w *writer) json(mediaType string, v any) (ocispec.Descriptor, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return w.blob(mediaType, data)
}

func (w *writer) blob(mediaType string, data []byte) (ocispec.Descriptor, error) {
	d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	return d, writeFile(filepath.Join(w.dir, "blobs", "sha256", d.Digest.Encoded()), data)
}

// index writes oci-layout and index.json: the tagged images with their
// reference names, and every referrer untagged, as DESIGN.md "The bundle" has it.
func (w *writer) index(l *Layout) error {
	tagged := func(d ocispec.Descriptor, ref string) ocispec.Descriptor {
		d.Platform = nil
		d.Annotations = map[string]string{ocispec.AnnotationRefName: ref, "io.containerd.image.name": ref}
		return d
	}
	idx := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: append([]ocispec.Descriptor{tagged(l.Multi, MultiRef), tagged(l.Single, SingleRef)}, l.Referrers...),
	}
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(w.dir, ocispec.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	return writeFile(filepath.Join(w.dir, "index.json"), data)
}

// writeFile writes through a temporary name so no half-written file ever
// sits under the final one.
func writeFile(path string, data []byte) error {
	tmp := path + ".partial"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func ptr[T any](v T) *T { return &v }
