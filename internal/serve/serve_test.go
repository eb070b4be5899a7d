package serve

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestServeKeepsPushedImageAcrossRestart(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()

	s := start(t, ctx, dir)
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	layer := bytes.Repeat([]byte("layer"), 1000)
	manifest := imageManifest(t, config, layer)
	base := "http://" + s.Addr()
	pushBlob(t, base, "demo/app", config)
	pushBlob(t, base, "demo/app", layer)
	put(t, base+"/v2/demo/app/manifests/1.0", ocispec.MediaTypeImageManifest, manifest, http.StatusCreated)
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := http.Get(base + "/v2/"); err == nil {
		t.Fatalf("server still answers on %s after Shutdown", base)
	}

	s2 := start(t, ctx, dir)
	defer s2.Shutdown(ctx)
	base2 := "http://" + s2.Addr()
	got := get(t, base2+"/v2/demo/app/manifests/1.0", ocispec.MediaTypeImageManifest)
	if !bytes.Equal(got, manifest) {
		t.Errorf("manifest after restart = %s, want %s", got, manifest)
	}
	if got := get(t, base2+"/v2/demo/app/blobs/"+digest.FromBytes(layer).String(), ""); !bytes.Equal(got, layer) {
		t.Errorf("layer after restart: %d bytes, want %d", len(got), len(layer))
	}
}

func TestStartRefusesBadInput(t *testing.T) {
	busy := start(t, t.Context(), t.TempDir())
	defer busy.Shutdown(t.Context())
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no dir", Options{Addr: "127.0.0.1:0"}, "--dir"},
		{"address in use", Options{Dir: t.TempDir(), Addr: busy.Addr()}, "--addr"},
		{"bad address", Options{Dir: t.TempDir(), Addr: "127.0.0.1:notaport"}, "--addr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Start(t.Context(), tt.opts)
			if err == nil {
				s.Shutdown(t.Context())
				t.Fatal("Start succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %s", err, tt.want)
			}
		})
	}
}

func TestRunStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, Options{Dir: t.TempDir(), Addr: "127.0.0.1:0"}, 5*time.Second, func(s *Server) { addrc <- s.Addr() })
	}()
	addr := <-addrc
	resp, err := http.Get("http://" + addr + "/v2/")
	if err != nil {
		t.Fatalf("registry not answering: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/ = %d, want 200", resp.StatusCode)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run returned %v after cancel, want nil", err)
	}
}

func start(t *testing.T, ctx context.Context, dir string) *Server {
	t.Helper()
	s, err := Start(ctx, Options{Dir: dir, Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return s
}

func imageManifest(t *testing.T, config, layer []byte) []byte {
	t.Helper()
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))},
		Layers:    []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(layer), Size: int64(len(layer))}},
	}
	m.SchemaVersion = 2
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func pushBlob(t *testing.T, base, repo string, data []byte) {
	t.Helper()
	resp, err := http.Post(base+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start upload: %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	if strings.HasPrefix(loc, "/") {
		loc = base + loc
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	put(t, fmt.Sprintf("%s%sdigest=sha256:%x", loc, sep, sha256.Sum256(data)), "application/octet-stream", data, http.StatusCreated)
}

func put(t *testing.T, url, mediaType string, body []byte, want int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mediaType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("PUT %s = %d %s, want %d", url, resp.StatusCode, msg, want)
	}
}

func get(t *testing.T, url, accept string) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d %s", url, resp.StatusCode, data)
	}
	return data
}
