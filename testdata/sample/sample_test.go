package sample

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestWriteIsDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	if _, err := Write(a); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(b); err != nil {
		t.Fatal(err)
	}
	files := 0
	err := filepath.WalkDir(a, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		rel, _ := filepath.Rel(a, path)
		x, _ := os.ReadFile(path)
		y, err := os.ReadFile(filepath.Join(b, rel))
		if err != nil || !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs (%v)", rel, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 20 {
		t.Errorf("only %d files written", files)
	}
}

func TestWriteProducesCompleteGraphWithReferrerTree(t *testing.T) {
	dir := t.TempDir()
	l, err := Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	var walk func(d ocispec.Descriptor)
	walk = func(d ocispec.Descriptor) {
		data, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", d.Digest.Encoded()))
		if err != nil {
			t.Fatalf("blob %s missing: %v", d.Digest, err)
		}
		if digest.FromBytes(data) != d.Digest || int64(len(data)) != d.Size {
			t.Fatalf("blob %s: content does not match its descriptor", d.Digest)
		}
		total += d.Size
		var m struct {
			Config    *ocispec.Descriptor
			Layers    []ocispec.Descriptor
			Manifests []ocispec.Descriptor
			Subject   *ocispec.Descriptor
		}
		if d.MediaType != ocispec.MediaTypeImageManifest && d.MediaType != ocispec.MediaTypeImageIndex {
			return
		}
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("manifest %s: %v", d.Digest, err)
		}
		if want, ok := l.SubjectOf[d.Digest]; ok && (m.Subject == nil || m.Subject.Digest != want) {
			t.Errorf("referrer %s: subject %v, want %s", d.Digest, m.Subject, want)
		}
		if m.Config != nil {
			walk(*m.Config)
		}
		for _, c := range append(m.Layers, m.Manifests...) {
			walk(c)
		}
	}
	var idx ocispec.Index
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		t.Fatal(err)
	}
	refs := map[string]bool{}
	for _, d := range idx.Manifests {
		refs[d.Annotations[ocispec.AnnotationRefName]] = true
		walk(d)
	}
	if !refs[MultiRef] || !refs[SingleRef] || len(idx.Manifests) != 2+5 {
		t.Errorf("index.json lists %d manifests with names %v; want the 2 images and 5 referrers", len(idx.Manifests), refs)
	}
	if len(l.Platforms) != 2 {
		t.Errorf("multi-platform image has %d platforms, want 2", len(l.Platforms))
	}
	var sbomSigned bool
	for _, subj := range l.SubjectOf {
		if _, ok := l.SubjectOf[subj]; ok {
			sbomSigned = true // a referrer whose subject is itself a referrer
		}
	}
	if !sbomSigned {
		t.Error("no referrer of a referrer: the sample has no two-deep tree")
	}
	if total > 1<<20 {
		t.Errorf("sample is %d bytes, want it small", total)
	}
}
