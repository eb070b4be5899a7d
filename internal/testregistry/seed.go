package testregistry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/bundle-dev/bundle/internal/graph"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// acceptManifests is what the seeding helpers accept when reading manifests.
var acceptManifests = strings.Join([]string{
	ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
	graph.MediaTypeDockerManifest, graph.MediaTypeDockerManifestList,
	graph.MediaTypeArtifactManifest, graph.MediaTypeDockerSchema1Signed, graph.MediaTypeDockerSchema1,
}, ", ")

// request makes one seeding request to the registry (or a proxy's upstream).
func (r *Registry) request(method, target string, header http.Header, body []byte) (*http.Response, []byte, error) {
	s := r.seed
	u, err := url.Parse(s.baseURL())
	if err != nil {
		return nil, nil, err
	}
	ref, err := url.Parse(target)
	if err != nil {
		return nil, nil, err
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u.ResolveReference(ref).String(), rd)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set(seedHeader, "1")
	if s.user != "" {
		req.SetBasicAuth(s.user, s.password)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp, data, err
}

// PushBlob uploads data to repo (monolithic upload) and returns its descriptor.
func (r *Registry) PushBlob(t testing.TB, repo, mediaType string, data []byte) ocispec.Descriptor {
	t.Helper()
	d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	resp, body, err := r.request(http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("testregistry: starting upload of %s to %s: %v %s", d.Digest, repo, err, status(resp, body))
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatalf("testregistry: upload location for %s: %v", repo, err)
	}
	q := loc.Query()
	q.Set("digest", d.Digest.String())
	loc.RawQuery = q.Encode()
	h := http.Header{"Content-Type": {"application/octet-stream"}}
	resp, body, err = r.request(http.MethodPut, loc.String(), h, data)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("testregistry: uploading %s to %s: %v %s", d.Digest, repo, err, status(resp, body))
	}
	r.seed.mu.Lock()
	r.seed.blobRepo[d.Digest] = repo
	r.seed.mu.Unlock()
	return d
}

// mountBlob makes a blob seeded into another repository of this registry
// available in repo.
func (r *Registry) mountBlob(t testing.TB, repo string, d ocispec.Descriptor) {
	t.Helper()
	resp, _, err := r.request(http.MethodHead, "/v2/"+repo+"/blobs/"+d.Digest.String(), nil, nil)
	if err == nil && resp.StatusCode == http.StatusOK {
		return
	}
	r.seed.mu.Lock()
	from, ok := r.seed.blobRepo[d.Digest]
	r.seed.mu.Unlock()
	if !ok {
		t.Fatalf("testregistry: shared layer %s is not in %s nor seeded anywhere on %s: push it first", d.Digest, repo, r.Host)
	}
	q := url.Values{"mount": {d.Digest.String()}, "from": {from}}
	resp, body, err := r.request(http.MethodPost, "/v2/"+repo+"/blobs/uploads/?"+q.Encode(), nil, nil)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("testregistry: mounting %s from %s into %s: %v %s", d.Digest, from, repo, err, status(resp, body))
	}
}

// PushManifest stores data as a manifest of mediaType in repo, under tag
// or, when tag is "", by digest.
func (r *Registry) PushManifest(t testing.TB, repo, tag, mediaType string, data []byte) ocispec.Descriptor {
	t.Helper()
	d, err := r.putManifest(repo, tag, mediaType, data)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (r *Registry) putManifest(repo, tag, mediaType string, data []byte) (ocispec.Descriptor, error) {
	d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	ref := tag
	if ref == "" {
		ref = d.Digest.String()
	}
	resp, body, err := r.request(http.MethodPut, "/v2/"+repo+"/manifests/"+ref, http.Header{"Content-Type": {mediaType}}, data)
	if err != nil || resp.StatusCode != http.StatusCreated {
		return d, fmt.Errorf("testregistry: pushing manifest %s to %s:%s: %v %s", d.Digest, repo, ref, err, status(resp, body))
	}
	return d, nil
}

// GetManifest reads the manifest repo:ref (tag or digest); ok is false when
// the registry answers 404.
func (r *Registry) GetManifest(t testing.TB, repo, ref string) (ocispec.Descriptor, []byte, bool) {
	t.Helper()
	resp, body, err := r.request(http.MethodGet, "/v2/"+repo+"/manifests/"+ref, http.Header{"Accept": {acceptManifests}}, nil)
	if err != nil {
		t.Fatalf("testregistry: reading manifest %s:%s: %v", repo, ref, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return ocispec.Descriptor{}, nil, false
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("testregistry: reading manifest %s:%s: %s", repo, ref, status(resp, body))
	}
	mt, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	return ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(body), Size: int64(len(body))}, body, true
}

// Tags lists repo's tags, sorted as the registry sorts them; nil when the
// repository does not exist.
func (r *Registry) Tags(t testing.TB, repo string) []string {
	t.Helper()
	var tags []string
	next := "/v2/" + repo + "/tags/list?n=1000"
	for next != "" {
		resp, body, err := r.request(http.MethodGet, next, nil, nil)
		if err != nil {
			t.Fatalf("testregistry: listing tags of %s: %v", repo, err)
		}
		if resp.StatusCode == http.StatusNotFound {
			return nil
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("testregistry: listing tags of %s: %s", repo, status(resp, body))
		}
		var list struct {
			Tags []string `json:"tags"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatalf("testregistry: decoding tags of %s: %v", repo, err)
		}
		tags = append(tags, list.Tags...)
		next = nextLink(resp.Header.Get("Link"))
	}
	return tags
}

// nextLink extracts the target of a Link: <...>; rel="next" header.
func nextLink(h string) string {
	start, end := strings.Index(h, "<"), strings.Index(h, ">")
	if start < 0 || end < start || !strings.Contains(h, `rel="next"`) {
		return ""
	}
	return h[start+1 : end]
}

// ListReferrers lists subject's referrers in repo: from the referrers API
// when the registry has it, else from the fallback tag's index.
func (r *Registry) ListReferrers(t testing.TB, repo string, subject digest.Digest) []ocispec.Descriptor {
	t.Helper()
	var data []byte
	if r.HasReferrersAPI() {
		resp, body, err := r.request(http.MethodGet, "/v2/"+repo+"/referrers/"+subject.String(), nil, nil)
		if err != nil {
			t.Fatalf("testregistry: listing referrers of %s in %s: %v", subject, repo, err)
		}
		if resp.StatusCode == http.StatusNotFound {
			return nil
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("testregistry: listing referrers of %s in %s: %s", subject, repo, status(resp, body))
		}
		data = body
	} else {
		_, body, ok := r.GetManifest(t, repo, graph.FallbackTag(subject))
		if !ok {
			return nil
		}
		data = body
	}
	var idx ocispec.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		t.Fatalf("testregistry: decoding referrers of %s in %s: %v", subject, repo, err)
	}
	return idx.Manifests
}

func status(resp *http.Response, body []byte) string {
	if resp == nil {
		return ""
	}
	if len(body) > 512 {
		body = body[:512]
	}
	return resp.Status + " " + strings.TrimSpace(string(body))
}
