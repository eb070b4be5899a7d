package graph

import (
	"errors"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestParse(t *testing.T) {
	const d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	const d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	tests := []struct {
		name         string
		mediaType    string
		data         string
		wantErr      error
		wantChildren int
		wantSubject  string
		wantType     string
	}{
		{"image manifest", ocispec.MediaTypeImageManifest,
			`{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + d1 + `","size":2},"layers":[{"digest":"` + d2 + `","size":3}]}`,
			nil, 2, "", ocispec.MediaTypeImageConfig},
		{"index", ocispec.MediaTypeImageIndex,
			`{"schemaVersion":2,"manifests":[{"digest":"` + d1 + `","size":2},{"digest":"` + d2 + `","size":3}]}`,
			nil, 2, "", ""},
		{"referrer with subject and artifactType", ocispec.MediaTypeImageManifest,
			`{"schemaVersion":2,"artifactType":"application/spdx+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"` + d1 + `","size":2},"subject":{"digest":"` + d2 + `","size":9}}`,
			nil, 1, d2, "application/spdx+json"},
		{"pre-release refers field", MediaTypeArtifactManifest,
			`{"artifactType":"x/y","blobs":[{"digest":"` + d1 + `","size":2}],"refers":{"digest":"` + d2 + `","size":9}}`,
			nil, 1, d2, "x/y"},
		{"schema 1 by media type", MediaTypeDockerSchema1Signed, `{}`, ErrSchema1, 0, "", ""},
		{"schema 1 by content", "application/json", `{"schemaVersion":1,"fsLayers":[{"blobSum":"x"}]}`, ErrSchema1, 0, "", ""},
		{"too large", ocispec.MediaTypeImageManifest, `{"a":"` + strings.Repeat("x", MaxManifestSize) + `"}`, ErrTooLarge, 0, "", ""},
		{"not JSON", ocispec.MediaTypeImageManifest, `{`, errAny, 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(tt.mediaType, []byte(tt.data))
			switch {
			case tt.wantErr == errAny:
				if err == nil {
					t.Fatal("Parse succeeded, want an error")
				}
				return
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Parse error = %v, want %v", err, tt.wantErr)
				}
				return
			case err != nil:
				t.Fatalf("Parse: %v", err)
			}
			if got := len(m.Children()); got != tt.wantChildren {
				t.Errorf("%d children, want %d", got, tt.wantChildren)
			}
			var subject string
			if m.Subject != nil {
				subject = m.Subject.Digest.String()
			}
			if subject != tt.wantSubject {
				t.Errorf("subject %q, want %q", subject, tt.wantSubject)
			}
			if got := m.ArtifactTypeOf(); got != tt.wantType {
				t.Errorf("artifact type %q, want %q", got, tt.wantType)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestForFetchRoutesArtifactManifestsAsManifests(t *testing.T) {
	for mt, want := range map[string]string{
		MediaTypeArtifactManifest:       ocispec.MediaTypeImageManifest,
		ocispec.MediaTypeImageIndex:     ocispec.MediaTypeImageIndex,
		ocispec.MediaTypeImageLayerGzip: ocispec.MediaTypeImageLayerGzip,
	} {
		if got := ForFetch(ocispec.Descriptor{MediaType: mt}).MediaType; got != want {
			t.Errorf("ForFetch(%s) = %s, want %s", mt, got, want)
		}
	}
}

func TestFallbackTag(t *testing.T) {
	d := "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	if got, want := FallbackTag(digest.Digest(d)), "sha256-1111111111111111111111111111111111111111111111111111111111111111"; got != want {
		t.Errorf("FallbackTag = %s, want %s", got, want)
	}
}
