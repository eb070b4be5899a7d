package pack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"testing"

	"github.com/containerd/containerd/v2/plugins/content/local"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/remote"
)

func TestAsyncSinkKeepsOrderAndHashesEveryByte(t *testing.T) {
	for _, sizes := range [][]int{{0}, {1, 2, 3}, {sinkBufSize - 1, 2, sinkBufSize*3 + 5}, {5 * sinkBufSize}} {
		var out bytes.Buffer
		h := sha256.New()
		s := newAsyncSink(&out, h)
		var want []byte
		for i, n := range sizes {
			p := bytes.Repeat([]byte{byte(i + 1)}, n)
			want = append(want, p...)
			if _, err := s.Write(p); err != nil {
				t.Fatalf("Write: %v", err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("sizes %v: output differs from input (%d vs %d bytes)", sizes, out.Len(), len(want))
		}
		if got, wantSum := h.Sum(nil), sha256.Sum256(want); !bytes.Equal(got, wantSum[:]) {
			t.Errorf("sizes %v: hash is not the hash of the bytes written", sizes)
		}
		if s.n != int64(len(want)) {
			t.Errorf("sizes %v: counted %d bytes, want %d", sizes, s.n, len(want))
		}
	}
}

type failingWriter struct{ err error }

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }

func TestAsyncSinkReportsTheFileFailing(t *testing.T) {
	full := errors.New("no space left on device")
	s := newAsyncSink(failingWriter{full}, sha256.New())
	var werr error
	for range 10 {
		if _, werr = s.Write(make([]byte, sinkBufSize)); werr != nil {
			break
		}
	}
	if err := s.Close(); !errors.Is(err, full) {
		t.Errorf("Close = %v, want %v", err, full)
	}
	if !errors.Is(werr, full) {
		t.Errorf("writes went on after the file failed: last Write error %v", werr)
	}
}

func TestManifestHandedOverByTheFinderIsNotFetchedAgain(t *testing.T) {
	store, err := local.NewStore(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	// No resolver: a fetch would panic or fail, so success means no fetch.
	src := newSource(nil, nil, store, remote.Policy{})
	data := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`)
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(data), Size: int64(len(data))}
	src.handOver(desc, data)
	got, err := src.manifest(context.Background(), "127.0.0.1:1/none", desc)
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("manifest = %q, want the handed-over bytes", got)
	}
	if held, ok := src.takePlanned(desc.Digest); !ok || !bytes.Equal(held, data) {
		t.Error("the handed-over manifest is not held for the archive writer")
	}
	if len(src.handed) != 0 {
		t.Errorf("%d handed-over manifests still held after use", len(src.handed))
	}
}
