package referrers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/internal/testregistry"
)

// racingWriter is a proxy in front of a real registry that plays another
// client: right after our first write of tag lands, it overwrites the tag
// with its own index, as a concurrent importer that read before our write
// would.
func racingWriter(t *testing.T, r *testregistry.Registry, repo, tag string, theirs []byte) string {
	t.Helper()
	target, err := url.Parse("http://" + r.Host)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		ModifyResponse: func(resp *http.Response) error {
			if resp.Request.Method == http.MethodPut && strings.HasSuffix(resp.Request.URL.Path, "/manifests/"+tag) && resp.StatusCode == http.StatusCreated {
				once.Do(func() { r.PushManifest(t, repo, tag, ocispec.MediaTypeImageIndex, theirs) })
			}
			return nil
		},
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestPublishRedoesMergeAfterConcurrentWrite(t *testing.T) {
	r := testregistry.NewDistribution(t)
	img := r.PushImage(t, "app", "1.0", testregistry.ImageSpec{Seed: 20})
	theirs := pushBareReferrer(t, r, "app", img.Desc, "application/x-theirs", map[string]string{"by": "them"})
	ours := pushBareReferrer(t, r, "app", img.Desc, typeSBOM, map[string]string{"by": "us"})
	tag := graph.FallbackTag(img.Desc.Digest)
	theirIndex := mustJSON(t, ocispec.Index{Versioned: ocispecVersioned(), MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{theirs}})
	host := racingWriter(t, r, "app", tag, theirIndex)

	if _, err := newPublisher(t, ModeTag).Publish(context.Background(), host+"/app", img.Desc, []ocispec.Descriptor{ours}); err != nil {
		t.Fatal(err)
	}
	idx, _ := fallbackIndex(t, r, "app", img.Desc)
	if idx == nil || len(idx.Manifests) != 2 {
		t.Fatalf("fallback index after a concurrent write = %+v, want theirs and ours", idx)
	}
	if idx.Manifests[0].Digest != theirs.Digest || idx.Manifests[1].Digest != ours.Digest {
		t.Errorf("fallback index lists %s, %s; want theirs %s then ours %s", idx.Manifests[0].Digest, idx.Manifests[1].Digest, theirs.Digest, ours.Digest)
	}
}
