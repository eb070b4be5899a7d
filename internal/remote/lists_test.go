package remote

import (
	"net/url"
	"strings"
	"testing"

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
