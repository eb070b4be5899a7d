package referrers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
)

// CosignSuffixes are the tag suffixes cosign attaches to <alg>-<hex>.
var cosignSuffixes = []string{"sig", "att", "sbom"}

// Finder discovers the referrers of manifests in a registry.
type Finder struct {
	Resolver remotes.Resolver
	// Cosign also looks for the cosign tags <alg>-<hex>.sig, .att and .sbom.
	Cosign bool
}

// Find returns the direct referrers of subject in repo ("host/path", no tag
// or digest): those the referrers API or the fallback tag index lists, plus
// cosign tags when f.Cosign. It does not recurse: the caller walks the tree
// and guards against cycles. No referrers anywhere is an empty list, not an
// error. A manifest both listed and cosign-tagged appears once per way it is
// attached, since import has to recreate both.
func (f *Finder) Find(ctx context.Context, repo string, subject ocispec.Descriptor) ([]Referrer, error) {
	if err := checkRepo(repo); err != nil {
		return nil, err
	}
	if err := subject.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("finding referrers in %s: subject digest %q: %w", repo, subject.Digest, err)
	}
	fetcher, err := f.Resolver.Fetcher(ctx, repo+"@"+subject.Digest.String())
	if err != nil {
		return nil, fmt.Errorf("finding referrers of %s in %s: %w", subject.Digest, repo, err)
	}
	out, err := f.listed(ctx, repo, fetcher, subject.Digest)
	if err != nil {
		return nil, err
	}
	if f.Cosign {
		cs, err := f.cosign(ctx, repo, fetcher, subject.Digest)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	return out, nil
}

// listed reads the referrers API, else the fallback tag index, through
// containerd (which tries them in that order).
func (f *Finder) listed(ctx context.Context, repo string, fetcher remotes.Fetcher, subject digest.Digest) ([]Referrer, error) {
	rf, ok := fetcher.(remotes.ReferrersFetcher)
	if !ok {
		return nil, fmt.Errorf("finding referrers of %s in %s: the registry client cannot list referrers (%T); use containerd's docker resolver", subject, repo, fetcher)
	}
	descs, err := rf.FetchReferrers(ctx, subject)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("listing referrers of %s in %s: %w; check the registry is reachable and the credentials can read the repository", subject, repo, err)
	}
	if len(descs) == 0 {
		return nil, nil
	}
	via, index, err := f.source(ctx, repo, subject, descs)
	if err != nil {
		return nil, err
	}
	out := make([]Referrer, 0, len(descs))
	seen := map[digest.Digest]bool{subject: true, index: true}
	for _, d := range descs {
		if seen[d.Digest] || d.Digest.Validate() != nil {
			continue
		}
		seen[d.Digest] = true
		d, ok, err := complete(ctx, fetcher, repo, subject, d)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, Referrer{Descriptor: d, Subject: subject, Via: via})
		}
	}
	return out, nil
}

// source tells whether a listing came from the API or the fallback tag, and
// returns the fallback index's digest so that it is never taken for a
// referrer. containerd does not say which it used; one HEAD on the fallback
// tag does: no tag means the API answered. A tag whose index lists exactly
// the same digests is taken as the source (a registry with the API would
// list the same set anyway).
func (f *Finder) source(ctx context.Context, repo string, subject digest.Digest, listed []ocispec.Descriptor) (string, digest.Digest, error) {
	_, desc, err := f.Resolver.Resolve(ctx, repo+":"+graph.FallbackTag(subject))
	if err != nil {
		if errdefs.IsNotFound(err) {
			return ViaAPI, "", nil
		}
		return "", "", fmt.Errorf("reading fallback tag %s in %s: %w", graph.FallbackTag(subject), repo, err)
	}
	if !graph.IsIndex(desc.MediaType) {
		// Not a referrers index: whatever the tag is, the listing is the API's.
		return ViaAPI, "", nil
	}
	fetcher, err := f.Resolver.Fetcher(ctx, repo+"@"+desc.Digest.String())
	if err != nil {
		return "", "", fmt.Errorf("reading fallback tag %s in %s: %w", graph.FallbackTag(subject), repo, err)
	}
	data, err := fetchManifest(ctx, fetcher, desc)
	if err != nil {
		return "", "", fmt.Errorf("reading fallback tag %s in %s: %w", graph.FallbackTag(subject), repo, err)
	}
	m, err := graph.Parse(desc.MediaType, data)
	if err != nil {
		return "", "", fmt.Errorf("reading fallback tag %s in %s: %w", graph.FallbackTag(subject), repo, err)
	}
	if sameDigests(m.Manifests, listed) {
		return ViaTag, desc.Digest, nil
	}
	return ViaAPI, desc.Digest, nil
}

func sameDigests(a, b []ocispec.Descriptor) bool {
	set := func(ds []ocispec.Descriptor) []digest.Digest {
		out := make([]digest.Digest, 0, len(ds))
		for _, d := range ds {
			out = append(out, d.Digest)
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	return slices.Equal(set(a), set(b))
}

// complete fills in what a listing entry lacks (artifactType, annotations,
// media type) from the manifest itself, and drops entries whose manifest
// does not point at subject (a stale fallback index). ok=false drops d.
func complete(ctx context.Context, fetcher remotes.Fetcher, repo string, subject digest.Digest, d ocispec.Descriptor) (ocispec.Descriptor, bool, error) {
	if d.ArtifactType != "" && d.MediaType != "" {
		return d, true, nil
	}
	if d.MediaType == "" {
		// Listings should carry it; the manifests endpoint needs a manifest type.
		d.MediaType = ocispec.MediaTypeImageManifest
	}
	data, err := fetchManifest(ctx, fetcher, d)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return d, false, nil // listed but gone: nothing to carry
		}
		return d, false, fmt.Errorf("reading referrer %s of %s in %s: %w", d.Digest, subject, repo, err)
	}
	m, err := graph.Parse(d.MediaType, data)
	if err != nil {
		return d, false, fmt.Errorf("reading referrer %s of %s in %s: %w", d.Digest, subject, repo, err)
	}
	if m.Subject == nil || m.Subject.Digest != subject {
		return d, false, nil
	}
	if m.MediaType != "" {
		d.MediaType = m.MediaType
	}
	d.ArtifactType = m.ArtifactTypeOf()
	if len(d.Annotations) == 0 {
		d.Annotations = m.Annotations
	}
	return d, true, nil
}

// cosign resolves the cosign tags of subject; a missing tag is no referrer.
func (f *Finder) cosign(ctx context.Context, repo string, fetcher remotes.Fetcher, subject digest.Digest) ([]Referrer, error) {
	var out []Referrer
	for _, suffix := range cosignSuffixes {
		tag := graph.FallbackTag(subject) + "." + suffix
		_, desc, err := f.Resolver.Resolve(ctx, repo+":"+tag)
		if err != nil {
			if errdefs.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("resolving cosign tag %s:%s: %w", repo, tag, err)
		}
		if !graph.IsManifest(desc.MediaType) {
			return nil, fmt.Errorf("cosign tag %s:%s points at %s of media type %q, not a manifest; remove or fix the tag", repo, tag, desc.Digest, desc.MediaType)
		}
		data, err := fetchManifest(ctx, fetcher, desc)
		if err != nil {
			return nil, fmt.Errorf("reading cosign tag %s:%s (%s): %w", repo, tag, desc.Digest, err)
		}
		m, err := graph.Parse(desc.MediaType, data)
		if err != nil {
			return nil, fmt.Errorf("reading cosign tag %s:%s (%s): %w", repo, tag, desc.Digest, err)
		}
		desc.ArtifactType = cosignArtifactType(m)
		desc.Annotations = m.Annotations
		desc.URLs, desc.Platform = nil, nil
		out = append(out, Referrer{Descriptor: desc, Subject: subject, Via: ViaCosign, Tag: tag})
	}
	return out, nil
}

// cosignArtifactType gives cosign manifests a type that --artifact-type can
// select. Cosign predates artifactType and reuses the generic image config
// type, so the config says nothing; the first layer's media type is what
// tells a signature (application/vnd.dev.cosign.simplesigning.v1+json) from
// an attestation (application/vnd.dsse.envelope.v1+json) or an SBOM.
func cosignArtifactType(m *graph.Manifest) string {
	if m.ArtifactType != "" {
		return m.ArtifactType
	}
	if m.Config != nil && !isGenericConfig(m.Config.MediaType) {
		return m.Config.MediaType
	}
	if len(m.Layers) > 0 {
		return m.Layers[0].MediaType
	}
	if m.Config != nil {
		return m.Config.MediaType
	}
	return ""
}

func isGenericConfig(mt string) bool {
	switch mt {
	case "", ocispec.MediaTypeImageConfig, ocispec.MediaTypeEmptyJSON,
		"application/vnd.docker.container.image.v1+json":
		return true
	}
	return false
}

// fetchManifest reads the manifest desc names, bounded and verified against
// its digest and size.
func fetchManifest(ctx context.Context, fetcher remotes.Fetcher, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Size > graph.MaxManifestSize {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, graph.ErrTooLarge)
	}
	rc, err := fetcher.Fetch(ctx, graph.ForFetch(desc))
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := graph.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	return data, verify(desc, data)
}

// verify checks data against desc's digest and, when known, its size.
func verify(desc ocispec.Descriptor, data []byte) error {
	if got := desc.Digest.Algorithm().FromBytes(data); got != desc.Digest {
		return fmt.Errorf("manifest %s: registry served content with digest %s; the registry or a proxy is corrupting data", desc.Digest, got)
	}
	if desc.Size > 0 && int64(len(data)) != desc.Size {
		return fmt.Errorf("manifest %s: registry served %d bytes, descriptor says %d", desc.Digest, len(data), desc.Size)
	}
	return nil
}

// checkRepo refuses a repository name with a tag or digest.
func checkRepo(repo string) error {
	host, path, ok := strings.Cut(repo, "/")
	if !ok || host == "" || path == "" {
		return fmt.Errorf("repository %q: want host/path (for example registry.example:5000/team/app)", repo)
	}
	if strings.Contains(path, "@") || strings.Contains(path, ":") {
		return fmt.Errorf("repository %q: give the repository without tag or digest", repo)
	}
	return nil
}
