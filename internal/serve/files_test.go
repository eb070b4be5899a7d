package serve

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
)

func TestServeFileAnswersDistributionAPI(t *testing.T) {
	for _, ext := range []string{".tar", ".tar.zst"} {
		t.Run(ext, func(t *testing.T) {
			f := newFixture(t, ext)
			base, _ := serveFiles(t, Options{Files: []string{f.file}})
			child := f.index.Children[1]
			layer := child.Layers[0]
			bigLayer := f.big.Layers[0]
			cosignTag := graph.FallbackTag(f.signed.Desc.Digest) + ".sig"
			tests := []struct {
				name   string
				method string
				path   string
				header http.Header
				status int
				check  func(t *testing.T, resp *http.Response, body []byte)
			}{
				{"base", "GET", "/v2/", nil, 200, nil},
				{"index by tag", "GET", "/v2/team/multi/manifests/2.0", nil, 200, func(t *testing.T, resp *http.Response, body []byte) {
					wantDigest(t, body, f.index.Desc.Digest)
					if ct := resp.Header.Get("Content-Type"); ct != ocispec.MediaTypeImageIndex {
						t.Errorf("Content-Type %q, want %s", ct, ocispec.MediaTypeImageIndex)
					}
				}},
				{"child by digest, HEAD", "HEAD", "/v2/team/multi/manifests/" + child.Desc.Digest.String(), nil, 200, func(t *testing.T, resp *http.Response, body []byte) {
					if got := resp.Header.Get("Docker-Content-Digest"); got != child.Desc.Digest.String() || len(body) != 0 {
						t.Errorf("HEAD: digest %s and %d bytes, want %s and none", got, len(body), child.Desc.Digest)
					}
					if resp.ContentLength != child.Desc.Size {
						t.Errorf("HEAD: Content-Length %d, want %d", resp.ContentLength, child.Desc.Size)
					}
				}},
				{"unknown tag", "GET", "/v2/team/multi/manifests/nope", nil, 404, wantCode("MANIFEST_UNKNOWN")},
				{"manifest of another repository", "GET", "/v2/team/multi/manifests/" + f.signed.Desc.Digest.String(), nil, 404, wantCode("MANIFEST_UNKNOWN")},
				{"unknown repository", "GET", "/v2/team/none/tags/list", nil, 404, wantCode("NAME_UNKNOWN")},
				{"layer", "GET", "/v2/team/multi/blobs/" + layer.Digest.String(), nil, 200, func(t *testing.T, _ *http.Response, body []byte) {
					wantDigest(t, body, layer.Digest)
				}},
				{"layer HEAD", "HEAD", "/v2/team/multi/blobs/" + layer.Digest.String(), nil, 200, func(t *testing.T, resp *http.Response, _ []byte) {
					if resp.ContentLength != layer.Size {
						t.Errorf("Content-Length %d, want %d", resp.ContentLength, layer.Size)
					}
				}},
				{"blob of another repository", "GET", "/v2/team/signed/blobs/" + bigLayer.Digest.String(), nil, 404, wantCode("BLOB_UNKNOWN")},
				{"small range", "GET", "/v2/team/multi/blobs/" + layer.Digest.String(), http.Header{"Range": {"bytes=10-19"}}, 206, func(t *testing.T, resp *http.Response, body []byte) {
					want := fmt.Sprintf("bytes 10-19/%d", layer.Size)
					if got := resp.Header.Get("Content-Range"); got != want || len(body) != 10 {
						t.Errorf("Content-Range %q and %d bytes, want %q and 10", got, len(body), want)
					}
				}},
				{"large blob whole", "GET", "/v2/team/big/blobs/" + bigLayer.Digest.String(), nil, 200, func(t *testing.T, _ *http.Response, body []byte) {
					wantDigest(t, body, bigLayer.Digest)
				}},
				{"large range from the middle", "GET", "/v2/team/big/blobs/" + bigLayer.Digest.String(), http.Header{"Range": {fmt.Sprintf("bytes=%d-", bigLayer.Size-2<<20)}}, 206, func(t *testing.T, resp *http.Response, body []byte) {
					if int64(len(body)) != 2<<20 {
						t.Errorf("%d bytes, want %d", len(body), 2<<20)
					}
				}},
				{"range past the end", "GET", "/v2/team/multi/blobs/" + layer.Digest.String(), http.Header{"Range": {fmt.Sprintf("bytes=%d-", layer.Size)}}, 416, wantCode("RANGE_INVALID")},
				{"bad digest", "GET", "/v2/team/multi/blobs/sha256:zz", nil, 400, wantCode("DIGEST_INVALID")},
				{"tags", "GET", "/v2/team/multi/tags/list", nil, 200, func(t *testing.T, _ *http.Response, body []byte) {
					var tl struct{ Tags []string }
					mustJSON(t, body, &tl)
					want := []string{"2.0", graph.FallbackTag(f.index.Desc.Digest), graph.FallbackTag(f.sbom.Digest), graph.FallbackTag(child.Desc.Digest)}
					slices.Sort(want)
					if !slices.Equal(tl.Tags, want) {
						t.Errorf("tags %v, want %v", tl.Tags, want)
					}
				}},
				{"tags paginated", "GET", "/v2/team/multi/tags/list?n=1", nil, 200, func(t *testing.T, resp *http.Response, body []byte) {
					var tl struct{ Tags []string }
					mustJSON(t, body, &tl)
					if len(tl.Tags) != 1 || !strings.Contains(resp.Header.Get("Link"), "last="+tl.Tags[0]) {
						t.Errorf("tags %v with Link %q, want one tag and a Link after it", tl.Tags, resp.Header.Get("Link"))
					}
				}},
				{"catalog", "GET", "/v2/_catalog", nil, 200, func(t *testing.T, _ *http.Response, body []byte) {
					var c struct{ Repositories []string }
					mustJSON(t, body, &c)
					if want := []string{"team/big", "team/multi", "team/signed"}; !slices.Equal(c.Repositories, want) {
						t.Errorf("catalog %v, want %v", c.Repositories, want)
					}
				}},
				{"catalog second page", "GET", "/v2/_catalog?n=2&last=team/big", nil, 200, func(t *testing.T, resp *http.Response, body []byte) {
					var c struct{ Repositories []string }
					mustJSON(t, body, &c)
					if want := []string{"team/multi", "team/signed"}; !slices.Equal(c.Repositories, want) || resp.Header.Get("Link") != "" {
						t.Errorf("catalog page %v, Link %q; want %v and no Link", c.Repositories, resp.Header.Get("Link"), want)
					}
				}},
				{"referrers of the index", "GET", "/v2/team/multi/referrers/" + f.index.Desc.Digest.String(), nil, 200, wantReferrers([]ocispec.Descriptor{f.sbom}, typeSBOM, false)},
				{"referrers of the SBOM", "GET", "/v2/team/multi/referrers/" + f.sbom.Digest.String(), nil, 200, wantReferrers([]ocispec.Descriptor{f.sig}, typeSig, false)},
				{"referrers of a platform", "GET", "/v2/team/multi/referrers/" + child.Desc.Digest.String(), nil, 200, wantReferrers([]ocispec.Descriptor{f.onChild}, typeSBOM, false)},
				{"referrers filtered out", "GET", "/v2/team/multi/referrers/" + f.index.Desc.Digest.String() + "?artifactType=" + url.QueryEscape(typeSig), nil, 200, wantReferrers(nil, "", true)},
				{"referrers filtered in", "GET", "/v2/team/multi/referrers/" + f.index.Desc.Digest.String() + "?artifactType=" + url.QueryEscape(typeSBOM), nil, 200, wantReferrers([]ocispec.Descriptor{f.sbom}, typeSBOM, true)},
				{"no referrers", "GET", "/v2/team/signed/referrers/" + f.signed.Desc.Digest.String(), nil, 200, wantReferrers(nil, "", false)},
				{"fallback tag", "GET", "/v2/team/multi/manifests/" + graph.FallbackTag(f.index.Desc.Digest), nil, 200, wantReferrers([]ocispec.Descriptor{f.sbom}, typeSBOM, false)},
				{"cosign tag", "GET", "/v2/team/signed/manifests/" + cosignTag, nil, 200, func(t *testing.T, _ *http.Response, body []byte) {
					wantDigest(t, body, f.cosign.Digest)
				}},
				{"upload refused", "POST", "/v2/team/multi/blobs/uploads/", nil, 405, wantCode("UNSUPPORTED")},
				{"tag refused", "PUT", "/v2/team/multi/manifests/3.0", nil, 405, wantCode("UNSUPPORTED")},
				{"delete refused", "DELETE", "/v2/team/multi/manifests/" + f.index.Desc.Digest.String(), nil, 405, wantCode("UNSUPPORTED")},
				{"patch refused", "PATCH", "/v2/team/multi/blobs/uploads/x", nil, 405, wantCode("UNSUPPORTED")},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					resp, body := do(t, tt.method, base+tt.path, tt.header)
					if resp.StatusCode != tt.status {
						t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, resp.StatusCode, body, tt.status)
					}
					if tt.check != nil {
						tt.check(t, resp, body)
					}
				})
			}
		})
	}
}

func wantDigest(t *testing.T, body []byte, want digest.Digest) {
	t.Helper()
	if got := digest.FromBytes(body); got != want {
		t.Errorf("body of %d bytes hashes to %s, want %s", len(body), got, want)
	}
}

func wantCode(code string) func(t *testing.T, resp *http.Response, body []byte) {
	return func(t *testing.T, _ *http.Response, body []byte) {
		t.Helper()
		var e struct {
			Errors []struct{ Code, Message string }
		}
		mustJSON(t, body, &e)
		if len(e.Errors) != 1 || e.Errors[0].Code != code || e.Errors[0].Message == "" {
			t.Errorf("error body %s, want one error %s with a message", body, code)
		}
		if code == "UNSUPPORTED" && !strings.Contains(e.Errors[0].Message, "read-only") {
			t.Errorf("error %q does not say the registry is read-only", e.Errors[0].Message)
		}
	}
}

// wantReferrers checks an index lists exactly want, each with artifactType
// at, and whether the filter is reported applied.
func wantReferrers(want []ocispec.Descriptor, at string, filtered bool) func(t *testing.T, resp *http.Response, body []byte) {
	return func(t *testing.T, resp *http.Response, body []byte) {
		t.Helper()
		var idx ocispec.Index
		mustJSON(t, body, &idx)
		var got, wantD []digest.Digest
		for _, d := range idx.Manifests {
			got = append(got, d.Digest)
			if d.ArtifactType != at {
				t.Errorf("referrer %s has artifactType %q, want %q", d.Digest, d.ArtifactType, at)
			}
		}
		for _, d := range want {
			wantD = append(wantD, d.Digest)
		}
		if !slices.Equal(got, wantD) || idx.Manifests == nil {
			t.Errorf("referrers %v (manifests %v), want %v", got, idx.Manifests, wantD)
		}
		if applied := resp.Header.Get("OCI-Filters-Applied") == "artifactType"; applied != filtered {
			t.Errorf("OCI-Filters-Applied %q, want filtered=%v", resp.Header.Get("OCI-Filters-Applied"), filtered)
		}
	}
}

func mustJSON(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
}
