package referrers

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/internal/remote"
	"github.com/bundle-dev/bundle/internal/testregistry"
)

// registries are the two real registries every behaviour is checked
// against: one with the referrers API and one without.
var registries = []struct {
	name string
	new  func(testing.TB) *testregistry.Registry
}{
	{"distribution", testregistry.NewDistribution},
	{"referrers-api", testregistry.NewReferrersAPI},
}

func clients(t *testing.T) (remotes.Resolver, *remote.Client) {
	t.Helper()
	// One retry, no backoff worth waiting for: faults here are deliberate.
	// An empty docker config dir: no credentials of the machine leak in.
	opts := remote.Options{PlainHTTP: true, MaxRetries: 1, MinBackoff: time.Millisecond, DockerConfigDir: t.TempDir()}
	return opts.Connect(context.Background())
}

// finder is a Finder over clients.
func finder(t *testing.T, cosign bool) *Finder {
	t.Helper()
	resolver, client := clients(t)
	return &Finder{Resolver: resolver, Client: client, Cosign: cosign}
}

func repoOf(r *testregistry.Registry, repo string) string { return r.Host + "/" + repo }

// pushBareReferrer pushes a referrer manifest of subject by digest and
// nothing else: no fallback tag, as import does before Publish.
func pushBareReferrer(t *testing.T, r *testregistry.Registry, repo string, subject ocispec.Descriptor, artifactType string, annotations map[string]string) ocispec.Descriptor {
	t.Helper()
	empty := r.PushBlob(t, repo, ocispec.MediaTypeEmptyJSON, ocispec.DescriptorEmptyJSON.Data)
	layer := r.PushBlob(t, repo, "application/octet-stream", mustJSON(t, map[string]any{"for": subject.Digest, "a": annotations}))
	m := struct {
		specs.Versioned
		MediaType    string               `json:"mediaType"`
		ArtifactType string               `json:"artifactType"`
		Config       ocispec.Descriptor   `json:"config"`
		Layers       []ocispec.Descriptor `json:"layers"`
		Subject      *ocispec.Descriptor  `json:"subject"`
		Annotations  map[string]string    `json:"annotations,omitempty"`
	}{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: artifactType,
		Config:       ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON, Digest: empty.Digest, Size: empty.Size},
		Layers:       []ocispec.Descriptor{layer},
		Subject:      &ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		Annotations:  annotations,
	}
	d := r.PushManifest(t, repo, "", m.MediaType, mustJSON(t, m))
	d.ArtifactType, d.Annotations = artifactType, annotations
	return d
}

// fallbackIndex reads the fallback tag index of subject as the registry
// stores it; nil when absent.
func fallbackIndex(t *testing.T, r *testregistry.Registry, repo string, subject ocispec.Descriptor) (*ocispec.Index, ocispec.Descriptor) {
	t.Helper()
	desc, data, ok := r.GetManifest(t, repo, graph.FallbackTag(subject.Digest))
	if !ok {
		return nil, desc
	}
	var idx ocispec.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		t.Fatalf("fallback index of %s: %v", subject.Digest, err)
	}
	return &idx, desc
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// pushListedReferrer pushes a referrer and, on a registry without the API,
// lists it in the fallback tag index as clients must. It stands in for
// testregistry's PushReferrer, which deadlocked on distribution when written (it holds
// the seed lock across a request its own handler locks for): see report.
func pushListedReferrer(t *testing.T, r *testregistry.Registry, repo string, subject ocispec.Descriptor, artifactType string, annotations map[string]string) ocispec.Descriptor {
	t.Helper()
	d := pushBareReferrer(t, r, repo, subject, artifactType, annotations)
	if r.HasReferrersAPI() {
		return d
	}
	idx, _ := fallbackIndex(t, r, repo, subject)
	if idx == nil {
		idx = &ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	}
	idx.Manifests = append(idx.Manifests, d)
	r.PushManifest(t, repo, graph.FallbackTag(subject.Digest), ocispec.MediaTypeImageIndex, mustJSON(t, idx))
	return d
}
