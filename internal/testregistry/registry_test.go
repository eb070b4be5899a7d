package testregistry

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/bundle-dev/bundle/internal/graph"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var kinds = []struct {
	name string
	new  func(testing.TB) *Registry
}{
	{"distribution", NewDistribution},
	{"referrersAPI", NewReferrersAPI},
}

// get is a plain client request, as the code under test would make it.
func get(t *testing.T, method, url string, header http.Header) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

func blobURL(r *Registry, repo string, d digest.Digest) string {
	return "http://" + r.Host + "/v2/" + repo + "/blobs/" + d.String()
}

func TestPushImageIsReadableBackOnBothRegistries(t *testing.T) {
	specs := []struct {
		name      string
		spec      ImageSpec
		manifest  string
		layerType string
	}{
		{"oci tar", ImageSpec{}, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageLayer},
		{"oci gzip", ImageSpec{Gzip: true, Layers: 3}, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageLayerGzip},
		{"docker gzip", ImageSpec{Docker: true, Gzip: true}, graph.MediaTypeDockerManifest, MediaTypeDockerLayerGzip},
		{"helm chart", ImageSpec{ArtifactType: MediaTypeHelmConfig, Layers: 1}, ocispec.MediaTypeImageManifest, MediaTypeHelmChart},
		{"artifact", ImageSpec{ArtifactType: "application/vnd.example.thing", Layers: 1}, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageLayer},
	}
	for _, k := range kinds {
		for _, s := range specs {
			t.Run(k.name+"/"+s.name, func(t *testing.T) {
				r := k.new(t)
				img := r.PushImage(t, "team/app", "v1", s.spec)
				desc, data, ok := r.GetManifest(t, "team/app", "v1")
				if !ok {
					t.Fatal("tag v1 not found after PushImage")
				}
				if desc.Digest != img.Desc.Digest || desc.MediaType != s.manifest {
					t.Fatalf("got %s %s, want %s %s", desc.MediaType, desc.Digest, s.manifest, img.Desc.Digest)
				}
				m, err := graph.Parse(desc.MediaType, data)
				if err != nil {
					t.Fatal(err)
				}
				want := max(s.spec.Layers, 0)
				if want == 0 {
					want = 2
				}
				if len(m.Layers) != want || len(img.Layers) != want {
					t.Fatalf("layers: manifest %d, image %d, want %d", len(m.Layers), len(img.Layers), want)
				}
				if s.spec.ArtifactType != "" && m.ArtifactTypeOf() != s.spec.ArtifactType {
					t.Fatalf("artifact type %q, want %q", m.ArtifactTypeOf(), s.spec.ArtifactType)
				}
				for _, l := range m.Layers {
					if l.MediaType != s.layerType {
						t.Fatalf("layer media type %s, want %s", l.MediaType, s.layerType)
					}
					resp, body, err := get(t, http.MethodGet, blobURL(r, "team/app", l.Digest), nil)
					if err != nil || resp.StatusCode != http.StatusOK || digest.FromBytes(body) != l.Digest {
						t.Fatalf("blob %s: %v %v", l.Digest, err, resp)
					}
					if strings.HasSuffix(l.MediaType, "gzip") {
						if _, err := gzip.NewReader(strings.NewReader(string(body))); err != nil {
							t.Fatalf("gzip layer %s is not gzip: %v", l.Digest, err)
						}
					}
				}
			})
		}
	}
}

func TestSameSeedGivesSameDigestsOnAnyRegistry(t *testing.T) {
	a, b := NewDistribution(t), NewReferrersAPI(t)
	one := a.PushImage(t, "x", "t", ImageSpec{Seed: 7, Gzip: true})
	two := b.PushImage(t, "y", "t", ImageSpec{Seed: 7, Gzip: true})
	other := a.PushImage(t, "x", "u", ImageSpec{Seed: 8, Gzip: true})
	if one.Desc.Digest != two.Desc.Digest {
		t.Fatalf("same seed, different digests: %s %s", one.Desc.Digest, two.Desc.Digest)
	}
	if one.Desc.Digest == other.Desc.Digest || one.Layers[0].Digest == other.Layers[0].Digest {
		t.Fatal("different seeds gave the same content")
	}
	if one.Layers[0].Digest == one.Layers[1].Digest {
		t.Fatal("two layers of one image are identical")
	}
}

func TestSharedLayersAreMountedFromAnotherRepository(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			r := k.new(t)
			base := r.PushImage(t, "base", "1", ImageSpec{Layers: 1, Seed: 1})
			app := r.PushImage(t, "app", "1", ImageSpec{Layers: 1, Seed: 2, Shared: base.Layers})
			if len(app.Layers) != 2 || app.Layers[0].Digest != base.Layers[0].Digest {
				t.Fatalf("app layers %v do not start with the base layer %s", app.Layers, base.Layers[0].Digest)
			}
			resp, _, err := get(t, http.MethodHead, blobURL(r, "app", base.Layers[0].Digest), nil)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("shared layer not in app: %v %v", err, resp)
			}
		})
	}
}

func TestPushIndexListsPlatformsAndBuildxAttestations(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			r := k.new(t)
			idx := r.PushIndex(t, "multi", "latest", []string{"linux/amd64", "linux/arm/v7"}, ImageSpec{Gzip: true}, true)
			_, data, ok := r.GetManifest(t, "multi", "latest")
			if !ok {
				t.Fatal("index tag missing")
			}
			var doc ocispec.Index
			if err := json.Unmarshal(data, &doc); err != nil {
				t.Fatal(err)
			}
			if len(doc.Manifests) != 4 || len(idx.Children) != 2 || len(idx.Attestations) != 2 {
				t.Fatalf("index has %d entries, %d children, %d attestations; want 4, 2, 2", len(doc.Manifests), len(idx.Children), len(idx.Attestations))
			}
			if p := doc.Manifests[1].Platform; p == nil || p.Architecture != "arm" || p.Variant != "v7" {
				t.Fatalf("second platform %+v, want linux/arm/v7", p)
			}
			att := doc.Manifests[2]
			if att.Platform.OS != "unknown" || att.Annotations[graph.AnnotationDockerRefType] != graph.DockerRefTypeAttestation ||
				att.Annotations[graph.AnnotationDockerRefDigest] != idx.Children[0].Desc.Digest.String() {
				t.Fatalf("attestation entry %+v does not point at the first child", att)
			}
			if idx.Children[0].Layers[0].Digest == idx.Children[1].Layers[0].Digest {
				t.Fatal("two platforms share layer content")
			}
		})
	}
}

func TestReferrersAreListedOnBothRegistries(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			r := k.new(t)
			img := r.PushImage(t, "app", "v1", ImageSpec{})
			sig := r.PushReferrer(t, "app", img.Desc, "application/vnd.example.sig", map[string]string{"n": "1"})
			sbom := r.PushReferrer(t, "app", img.Desc, "application/spdx+json", nil)
			got := r.ListReferrers(t, "app", img.Desc.Digest)
			byDigest := map[digest.Digest]string{}
			for _, d := range got {
				byDigest[d.Digest] = d.ArtifactType
			}
			if len(got) != 2 || byDigest[sig.Digest] != "application/vnd.example.sig" || byDigest[sbom.Digest] != "application/spdx+json" {
				t.Fatalf("referrers %+v, want sig and sbom with their artifact types", got)
			}
			hasFallback := slices.Contains(r.Tags(t, "app"), graph.FallbackTag(img.Desc.Digest))
			if hasFallback == r.HasReferrersAPI() {
				t.Fatalf("fallback tag present=%v with referrers API=%v", hasFallback, r.HasReferrersAPI())
			}
			if none := r.ListReferrers(t, "app", sig.Digest); len(none) != 0 {
				t.Fatalf("referrers of the signature: %v, want none", none)
			}
		})
	}
}

func TestReferrersAPIBehavesAsARealRegistry(t *testing.T) {
	r := NewReferrersAPI(t)
	img := r.PushImage(t, "app", "v1", ImageSpec{})
	r.PushReferrer(t, "app", img.Desc, "application/vnd.example.sig", nil)
	sbom := r.PushReferrer(t, "app", img.Desc, "application/spdx+json", nil)

	base := "http://" + r.Host + "/v2/app/referrers/" + img.Desc.Digest.String()
	resp, body, err := get(t, http.MethodGet, base+"?artifactType=application/spdx%2Bjson", nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("referrers: %v %v", err, resp)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(body, &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != sbom.Digest || idx.Manifests[0].ArtifactType != "application/spdx+json" {
		t.Fatalf("filtered referrers %+v, want only the sbom with its artifactType", idx.Manifests)
	}
	if resp.Header.Get("OCI-Filters-Applied") != "artifactType" {
		t.Fatalf("OCI-Filters-Applied = %q", resp.Header.Get("OCI-Filters-Applied"))
	}

	// A PUT with a subject answers OCI-Subject; one without does not.
	_, data, _ := r.GetManifest(t, "app", sbom.Digest.String())
	req, _ := http.NewRequest(http.MethodPut, "http://"+r.Host+"/v2/app/manifests/again", strings.NewReader(string(data)))
	req.Header.Set("Content-Type", ocispec.MediaTypeImageManifest)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("OCI-Subject") != img.Desc.Digest.String() {
		t.Fatalf("PUT of a referrer: %s, OCI-Subject %q", resp.Status, resp.Header.Get("OCI-Subject"))
	}
}

func TestDistributionHasNoReferrersAPI(t *testing.T) {
	r := NewDistribution(t)
	img := r.PushImage(t, "app", "v1", ImageSpec{})
	resp, _, err := get(t, http.MethodGet, "http://"+r.Host+"/v2/app/referrers/"+img.Desc.Digest.String(), nil)
	if err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("referrers API on distribution: %v %v, want 404", err, resp)
	}
}

func TestCountSeesClientRequestsButNotSeeding(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			r := k.new(t)
			img := r.PushImage(t, "app", "v1", ImageSpec{})
			if n := r.Count("", "upload") + r.Count("", "manifest"); n != 0 {
				t.Fatalf("seeding was counted: %d", n)
			}
			accept := http.Header{"Accept": {ocispec.MediaTypeImageManifest}}
			get(t, http.MethodHead, "http://"+r.Host+"/v2/app/manifests/v1", accept)
			get(t, http.MethodGet, "http://"+r.Host+"/v2/app/manifests/v1", accept)
			get(t, http.MethodGet, blobURL(r, "app", img.Layers[0].Digest), nil)
			get(t, http.MethodGet, "http://"+r.Host+"/v2/app/tags/list", nil)
			cases := []struct {
				method, kind string
				want         int
			}{
				{"HEAD", "manifest", 1}, {"GET", "manifest", 1}, {"", "manifest", 2},
				{"GET", "blob", 1}, {"GET", "tags", 1}, {"", "upload", 0},
			}
			for _, c := range cases {
				if got := r.Count(c.method, c.kind); got != c.want {
					t.Errorf("Count(%q, %q) = %d, want %d", c.method, c.kind, got, c.want)
				}
			}
			r.ResetCounts()
			if got := r.Count("", "manifest"); got != 0 {
				t.Fatalf("after ResetCounts: %d", got)
			}
		})
	}
}

func TestPushCosignTagsTheSubjectDigest(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			r := k.new(t)
			img := r.PushImage(t, "app", "v1", ImageSpec{})
			for _, suffix := range []string{"sig", "att", "sbom"} {
				d := r.PushCosign(t, "app", img.Desc, suffix)
				got, _, ok := r.GetManifest(t, "app", graph.FallbackTag(img.Desc.Digest)+"."+suffix)
				if !ok || got.Digest != d.Digest {
					t.Fatalf(".%s tag: ok=%v digest %s, want %s", suffix, ok, got.Digest, d.Digest)
				}
			}
		})
	}
}

func TestPushSchema1IsServed(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			r := k.new(t)
			r.PushSchema1(t, "old", "v1")
			d, data, ok := r.GetManifest(t, "old", "v1")
			if !ok || !graph.IsSchema1(d.MediaType) {
				t.Fatalf("schema 1 manifest: ok=%v media type %q", ok, d.MediaType)
			}
			if _, err := graph.Parse(d.MediaType, data); !errors.Is(err, graph.ErrSchema1) {
				t.Fatalf("graph.Parse = %v, want ErrSchema1", err)
			}
		})
	}
}

func TestProxyInjectsFaults(t *testing.T) {
	up := NewDistribution(t)
	img := up.PushImage(t, "app", "v1", ImageSpec{LayerSize: 64 << 10})
	layer := img.Layers[0].Digest

	t.Run("status", func(t *testing.T) {
		p := NewProxy(t, up, Faults{Status: http.StatusTooManyRequests, StatusTimes: 2})
		var codes []int
		for range 3 {
			resp, _, err := get(t, http.MethodGet, blobURL(p, "app", layer), nil)
			if err != nil {
				t.Fatal(err)
			}
			codes = append(codes, resp.StatusCode)
			if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "0" {
				t.Fatal("429 without Retry-After: 0")
			}
		}
		if !slices.Equal(codes, []int{429, 429, 200}) {
			t.Fatalf("codes %v, want 429 429 200", codes)
		}
		if got := p.Count("GET", "blob"); got != 3 {
			t.Fatalf("proxy counted %d blob GETs, want 3", got)
		}
	})
	t.Run("corrupt", func(t *testing.T) {
		p := NewProxy(t, up, Faults{CorruptBlob: layer})
		resp, body, err := get(t, http.MethodGet, blobURL(p, "app", layer), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%v %v", err, resp)
		}
		if int64(len(body)) != img.Layers[0].Size || digest.FromBytes(body) == layer {
			t.Fatalf("body of %d bytes still matches its digest", len(body))
		}
		_, other, _ := get(t, http.MethodGet, blobURL(p, "app", img.Layers[1].Digest), nil)
		if digest.FromBytes(other) != img.Layers[1].Digest {
			t.Fatal("the other blob was corrupted too")
		}
	})
	t.Run("reset", func(t *testing.T) {
		p := NewProxy(t, up, Faults{ResetBlob: layer, ResetTimes: 1})
		if _, _, err := get(t, http.MethodGet, blobURL(p, "app", layer), nil); err == nil {
			t.Fatal("first GET succeeded, want a cut connection")
		}
		_, body, err := get(t, http.MethodGet, blobURL(p, "app", layer), nil)
		if err != nil || digest.FromBytes(body) != layer {
			t.Fatalf("second GET: %v", err)
		}
	})
	t.Run("seeding bypasses faults", func(t *testing.T) {
		p := NewProxy(t, up, Faults{Status: http.StatusServiceUnavailable, StatusTimes: 100})
		again := p.PushImage(t, "other", "v1", ImageSpec{Seed: 3})
		if _, _, ok := up.GetManifest(t, "other", "v1"); !ok {
			t.Fatal("image seeded through the proxy is not upstream")
		}
		if p.Ref("other", again.Desc.Digest.String()) != p.Host+"/other@"+again.Desc.Digest.String() {
			t.Fatal("Ref by digest")
		}
	})
}

func TestStartProcessServesSeededImages(t *testing.T) {
	cases := []struct {
		name string
		opts ProcessOptions
	}{
		{"plain", ProcessOptions{}},
		{"tls and htpasswd", ProcessOptions{TLS: true, Htpasswd: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := StartProcess(t, c.opts)
			img := p.PushImage(t, "app", "v1", ImageSpec{})
			if d, _, ok := p.GetManifest(t, "app", "v1"); !ok || d.Digest != img.Desc.Digest {
				t.Fatal("pushed image not found")
			}
			if (p.CACertPath != "") != c.opts.TLS || (p.User != "") != c.opts.Htpasswd {
				t.Fatalf("CACertPath %q, User %q for %+v", p.CACertPath, p.User, c.opts)
			}
			cfg, err := io.ReadAll(mustOpen(t, p.DockerConfigDir+"/config.json"))
			if err != nil || strings.Contains(string(cfg), p.Host) != c.opts.Htpasswd {
				t.Fatalf("docker config %s for %+v", cfg, c.opts)
			}
			if !c.opts.Htpasswd {
				return
			}
			// Without credentials the registry refuses.
			resp, err := p.client.Get(p.baseURL() + "/v2/app/manifests/" + img.Desc.Digest.String())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("anonymous GET: %s, want 401", resp.Status)
			}
		})
	}
}

func mustOpen(t *testing.T, path string) io.Reader {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
