package remote

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestNextLink(t *testing.T) {
	tests := []struct{ header, want string }{
		{"", ""},
		{`</v2/a/referrers/sha256:1?n=2&last=x>; rel="next"`, "/v2/a/referrers/sha256:1?n=2&last=x"},
		{`<https://r/prev>; rel="prev", <https://r/next>; rel="next"`, "https://r/next"},
		{`<https://r/prev>; rel="prev"`, ""},
	}
	for _, tt := range tests {
		if got := nextLink(tt.header); got != tt.want {
			t.Errorf("nextLink(%q) = %q, want %q", tt.header, got, tt.want)
		}
	}
}

func TestUploadURLKeepsTheRegistryName(t *testing.T) {
	answered, _ := url.Parse("http://127.0.0.1:5000/v2/a/blobs/uploads/")
	d := ocispec.Descriptor{Digest: "sha256:0000000000000000000000000000000000000000000000000000000000000000"}
	for _, tc := range []struct{ loc, want string }{
		{"/v2/a/blobs/uploads/u1?_state=x", "http://reg.example:5000/v2/a/blobs/uploads/u1?_state=x&digest=" + d.Digest.String()},
		{"http://127.0.0.1:5000/v2/a/blobs/uploads/u2", "http://reg.example:5000/v2/a/blobs/uploads/u2?digest=" + d.Digest.String()},
		{"https://uploads.example/u3?sig=1", "https://uploads.example/u3?digest=" + d.Digest.String() + "&sig=1"},
	} {
		u, err := uploadURL(answered, tc.loc, "reg.example:5000", d)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := url.QueryUnescape(u.String()); got != tc.want {
			t.Errorf("Location %q: PUT to %q, want %q", tc.loc, got, tc.want)
		}
	}
	if _, err := uploadURL(answered, "", "reg.example:5000", d); err == nil || !strings.Contains(err.Error(), d.Digest.String()) {
		t.Errorf("empty Location: %v", err)
	}
}

// The referrers API is read to its last page; a 404 means no API.
func TestReferrersFollowsPagesAndKnowsNoAPI(t *testing.T) {
	d1, d2 := digest.FromString("one"), digest.FromString("two")
	page := func(d digest.Digest, next string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if next != "" {
				w.Header().Set("Link", "<"+next+`>; rel="next"`)
			}
			w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
			fmt.Fprintf(w, `{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":1}]}`, ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest, d)
		}
	}
	subject := digest.FromString("subject")
	s, host := serve(t, page(d1, "/v2/app/referrers/"+subject.String()+"?last=1"), page(d2, ""))
	ctx := context.Background()
	_, client := quick.Connect(ctx)
	got, found, err := client.Referrers(ctx, host+"/app", subject)
	if err != nil || !found || len(got) != 2 || got[0].Digest != d1 || got[1].Digest != d2 {
		t.Fatalf("Referrers = %v %v %v, want both pages", got, found, err)
	}
	if s.count() != 2 {
		t.Fatalf("%d requests, want 2", s.count())
	}
	_, host = serve(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) })
	if got, found, err := client.Referrers(ctx, host+"/app", subject); err != nil || found || got != nil {
		t.Fatalf("Referrers on a 404 = %v %v %v, want no API", got, found, err)
	}
}
