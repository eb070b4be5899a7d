package pack

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/remote"
	"github.com/bundle-dev/bundle/internal/testregistry"
)

// registries are the two in-process registries every behaviour that
// depends on the referrers scheme is checked against.
var registries = []struct {
	name string
	new  func(testing.TB) *testregistry.Registry
}{
	{"distribution", testregistry.NewDistribution},
	{"referrersAPI", testregistry.NewReferrersAPI},
}

// testOptions exports to dir/name with a private cache and no credentials
// from the machine running the tests.
func testOptions(t testing.TB, name string) Options {
	t.Helper()
	dir := t.TempDir()
	return Options{
		Output:   filepath.Join(dir, name),
		CacheDir: filepath.Join(dir, "cache"),
		Remote: remote.Options{
			PlainHTTP:       true,
			DockerConfigDir: t.TempDir(),
			MaxRetries:      3,
			MinBackoff:      time.Millisecond,
		},
	}
}

// archive is an exported bundle read back with the standard decoders.
type archive struct {
	names []string // entry order
	index ocispec.Index
	blobs map[digest.Digest][]byte
}

func readArchive(t testing.TB, path string) archive {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("opening the archive: %v", err)
	}
	defer f.Close()
	var r io.Reader = f
	switch {
	case strings.HasSuffix(path, ".tar.gz"):
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = zr
	case strings.HasSuffix(path, ".tar.zst"):
		zr, err := zstd.NewReader(f)
		if err != nil {
			t.Fatalf("zstd: %v", err)
		}
		defer zr.Close()
		r = zr
	}
	a := archive{blobs: map[digest.Digest][]byte{}}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading the tar: %v", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("reading %s: %v", hdr.Name, err)
		}
		a.names = append(a.names, hdr.Name)
		switch {
		case hdr.Name == "index.json":
			if err := json.Unmarshal(data, &a.index); err != nil {
				t.Fatalf("index.json: %v", err)
			}
		case strings.HasPrefix(hdr.Name, "blobs/sha256/"):
			d := digest.NewDigestFromEncoded(digest.SHA256, strings.TrimPrefix(hdr.Name, "blobs/sha256/"))
			if got := digest.FromBytes(data); got != d {
				t.Errorf("entry %s holds content of digest %s", hdr.Name, got)
			}
			if _, dup := a.blobs[d]; dup {
				t.Errorf("blob %s is in the archive twice", d)
			}
			a.blobs[d] = data
		case hdr.Name == "oci-layout":
		default:
			t.Errorf("unexpected entry %q", hdr.Name)
		}
	}
	if len(a.names) < 2 || a.names[0] != "oci-layout" || a.names[1] != "index.json" {
		t.Errorf("archive starts with %v, want oci-layout, index.json", a.names[:min(2, len(a.names))])
	}
	return a
}

func (a archive) has(d digest.Digest) bool {
	_, ok := a.blobs[d]
	return ok
}

// entry finds the index.json entry named ref.
func (a archive) entry(ref string) (ocispec.Descriptor, bool) {
	for _, m := range a.index.Manifests {
		if m.Annotations[ocispec.AnnotationRefName] == ref {
			return m, true
		}
	}
	return ocispec.Descriptor{}, false
}

// untagged lists the digests of index.json entries without a name.
func (a archive) untagged() []digest.Digest {
	var out []digest.Digest
	for _, m := range a.index.Manifests {
		if _, ok := m.Annotations[ocispec.AnnotationRefName]; !ok {
			out = append(out, m.Digest)
		}
	}
	slices.Sort(out)
	return out
}

func wantBlobs(t testing.TB, a archive, ds ...ocispec.Descriptor) {
	t.Helper()
	for _, d := range ds {
		if !a.has(d.Digest) {
			t.Errorf("blob %s (%s) missing from the archive", d.Digest, d.MediaType)
		}
	}
}

func imageDescs(img testregistry.Image) []ocispec.Descriptor {
	return append([]ocispec.Descriptor{img.Desc, img.Config}, img.Layers...)
}

// wantNoFiles checks a failed export left nothing under any of its names.
func wantNoFiles(t testing.TB, out string) {
	t.Helper()
	for _, p := range []string{out, out + ".partial", out + ".sha256", out + ".sha256.partial"} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after a failed export (stat: %v)", p, err)
		}
	}
}

// wantSidecar checks out.sha256 is sha256sum's line for out.
func wantSidecar(t testing.TB, out string, rep *Report) {
	t.Helper()
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:]) + "  " + filepath.Base(out) + "\n"
	side, err := os.ReadFile(out + ".sha256")
	if err != nil {
		t.Fatalf("reading the checksum file: %v", err)
	}
	if string(side) != want {
		t.Errorf("%s.sha256 = %q, want %q", out, side, want)
	}
	if rep.SHA256 != hex.EncodeToString(sum[:]) || rep.ArchiveSize != int64(len(data)) {
		t.Errorf("report says sha256 %s size %d, archive is %x, %d bytes", rep.SHA256, rep.ArchiveSize, sum, len(data))
	}
	if _, err := os.Stat(out + ".partial"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s.partial left behind", out)
	}
}
