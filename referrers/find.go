package referrers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/internal/remote"
)

// CosignSuffixes are the tag suffixes cosign attaches to <alg>-<hex>.
var cosignSuffixes = []string{"sig", "att", "sbom"}

// Finder discovers the referrers of manifests in a registry.
type Finder struct {
	// Resolver resolves tags and reads manifests.
	Resolver remotes.Resolver
	// Client asks each registry once whether it has the referrers API,
	// reads that API (all its pages), and lists each repository's tags once
	// so that Find skips the lookups of fallback and cosign tags that are
	// not there: most manifests have none, and each lookup is a round
	// trip. The listing is a snapshot taken at the first Find in a
	// repository.
	Client *remote.Client
	// Cosign also looks for the cosign tags <alg>-<hex>.sig, .att and .sbom.
	Cosign bool
	// Fetched, if set, receives every referrer manifest Find had to read,
	// verified against its descriptor, so that a caller walking the tree
	// need not fetch it again. It may be called from several goroutines.
	Fetched func(desc ocispec.Descriptor, data []byte)

	tagsMu sync.Mutex
	tags   map[string]*tagList // by repository
	probe  *Publisher          // asks each host once whether it has the API
}

type tagList struct {
	once sync.Once
	set  map[string]bool
	err  error
}

// mayHaveTag reports false only when repo's tag listing is known and lacks
// tag; when the registry would not list tags, every tag may exist and is
// asked for.
func (f *Finder) mayHaveTag(ctx context.Context, repo, tag string) bool {
	f.tagsMu.Lock()
	if f.tags == nil {
		f.tags = map[string]*tagList{}
	}
	l := f.tags[repo]
	if l == nil {
		l = &tagList{}
		f.tags[repo] = l
	}
	f.tagsMu.Unlock()
	l.once.Do(func() {
		// Only tags named after a digest matter here; the others could be
		// many, and are not kept.
		list, err := f.Client.Tags(ctx, repo, tagPageSize, isDigestTag)
		l.err = err
		l.set = map[string]bool{}
		for _, t := range list {
			l.set[t] = true
		}
	})
	return l.err != nil || l.set[tag]
}

// hasAPI asks repo's registry, once, whether it has the referrers API.
func (f *Finder) hasAPI(ctx context.Context, repo string) (bool, error) {
	f.tagsMu.Lock()
	if f.probe == nil {
		f.probe = &Publisher{Client: f.Client}
	}
	p := f.probe
	f.tagsMu.Unlock()
	return p.HasAPI(ctx, repo)
}

// isDigestTag tells the tags of the referrers tag schema and cosign,
// <alg>-<hex>[.suffix].
func isDigestTag(tag string) bool {
	alg, rest, ok := strings.Cut(tag, "-")
	if !ok {
		return false
	}
	hex, _, _ := strings.Cut(rest, ".")
	return digest.NewDigestFromEncoded(digest.Algorithm(alg), hex).Validate() == nil
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
	// The listing and the cosign tags are independent lookups, each a few
	// round trips: ask for them at the same time.
	var listed, cosign []Referrer
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		listed, err = f.listed(gctx, repo, fetcher, subject.Digest)
		return err
	})
	if f.Cosign {
		g.Go(func() error {
			var err error
			cosign, err = f.cosign(gctx, repo, fetcher, subject.Digest)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return append(listed, cosign...), nil
}

// listed reads the referrers API, all its pages, when the registry has
// it, else the fallback tag index. A listing that cannot be read is an
// error, never an empty list: that would be signatures silently left
// behind.
func (f *Finder) listed(ctx context.Context, repo string, fetcher remotes.Fetcher, subject digest.Digest) ([]Referrer, error) {
	has, err := f.hasAPI(ctx, repo)
	if err != nil {
		return nil, fmt.Errorf("listing referrers of %s in %s: %w", subject, repo, err)
	}
	if !has && !f.mayHaveTag(ctx, repo, graph.FallbackTag(subject)) {
		return nil, nil
	}
	// Which way the listing came is one more lookup of the fallback tag:
	// asked beside the listing, it costs no extra round trip.
	var (
		descs        []ocispec.Descriptor
		index        digest.Digest
		tagged       []ocispec.Descriptor
		lerr, terr   error
		listG, tagGr errgroup.Group
	)
	if has {
		listG.Go(func() error { descs, _, lerr = f.Client.Referrers(ctx, repo, subject); return nil })
	}
	tagGr.Go(func() error { index, tagged, terr = f.fallbackIndex(ctx, repo, subject); return nil })
	_, _ = listG.Wait(), tagGr.Wait()
	if lerr != nil {
		return nil, fmt.Errorf("listing referrers of %s in %s: %w", subject, repo, lerr)
	}
	if has && len(descs) == 0 {
		return nil, nil
	}
	if terr != nil {
		return nil, terr
	}
	via := ViaAPI
	switch {
	case !has:
		descs, via = tagged, ViaTag
	case index != "" && sameDigests(tagged, descs):
		via = ViaTag
	}
	var todo []ocispec.Descriptor
	seen := map[digest.Digest]bool{subject: true, index: true}
	for _, d := range descs {
		if seen[d.Digest] || d.Digest.Validate() != nil {
			continue
		}
		seen[d.Digest] = true
		todo = append(todo, d)
	}
	// Entries that need their manifest read are read side by side; the
	// listing's order is kept.
	got := make([]*Referrer, len(todo))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(lookupsPerSubject)
	for i, d := range todo {
		g.Go(func() error {
			d, ok, err := f.complete(gctx, fetcher, repo, subject, d)
			if ok {
				got[i] = &Referrer{Descriptor: d, Subject: subject, Via: via}
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := make([]Referrer, 0, len(todo))
	for _, r := range got {
		if r != nil {
			out = append(out, *r)
		}
	}
	return out, nil
}

// lookupsPerSubject bounds the requests one Find has in flight for one
// kind of lookup; the caller bounds the number of Finds.
const lookupsPerSubject = 4

// fallbackIndex reads the fallback tag index of subject, if there is one,
// to tell whether a listing came from the API or from that tag, and so that
// the index is never taken for a referrer. containerd does not say which it
// used; no tag means the API answered. A tag whose index lists exactly the
// same digests is taken as the source (a registry with the API would list
// the same set anyway).
func (f *Finder) fallbackIndex(ctx context.Context, repo string, subject digest.Digest) (digest.Digest, []ocispec.Descriptor, error) {
	tag := graph.FallbackTag(subject)
	if !f.mayHaveTag(ctx, repo, tag) {
		return "", nil, nil
	}
	_, desc, err := f.Resolver.Resolve(ctx, repo+":"+tag)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return "", nil, nil
		}
		return "", nil, fmt.Errorf("reading fallback tag %s in %s: %w", tag, repo, err)
	}
	if !graph.IsIndex(desc.MediaType) {
		// Not a referrers index: whatever the tag is, the listing is the API's.
		return "", nil, nil
	}
	fetcher, err := f.Resolver.Fetcher(ctx, repo+"@"+desc.Digest.String())
	if err != nil {
		return "", nil, fmt.Errorf("reading fallback tag %s in %s: %w", tag, repo, err)
	}
	data, err := fetchManifest(ctx, fetcher, desc)
	if err != nil {
		return "", nil, fmt.Errorf("reading fallback tag %s in %s: %w", tag, repo, err)
	}
	m, err := graph.Parse(desc.MediaType, data)
	if err != nil {
		return "", nil, fmt.Errorf("reading fallback tag %s in %s: %w", tag, repo, err)
	}
	return desc.Digest, m.Manifests, nil
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
func (f *Finder) complete(ctx context.Context, fetcher remotes.Fetcher, repo string, subject digest.Digest, d ocispec.Descriptor) (ocispec.Descriptor, bool, error) {
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
	f.fetched(d, data)
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

// cosign resolves the cosign tags of subject, all at once; a missing tag
// is no referrer.
func (f *Finder) cosign(ctx context.Context, repo string, fetcher remotes.Fetcher, subject digest.Digest) ([]Referrer, error) {
	got := make([]*Referrer, len(cosignSuffixes))
	g, gctx := errgroup.WithContext(ctx)
	for i, suffix := range cosignSuffixes {
		g.Go(func() error {
			var err error
			got[i], err = f.cosignTag(gctx, repo, fetcher, subject, graph.FallbackTag(subject)+"."+suffix)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []Referrer
	for _, r := range got {
		if r != nil {
			out = append(out, *r)
		}
	}
	return out, nil
}

// cosignTag reads one cosign tag; nil without error when it does not exist.
func (f *Finder) cosignTag(ctx context.Context, repo string, fetcher remotes.Fetcher, subject digest.Digest, tag string) (*Referrer, error) {
	if !f.mayHaveTag(ctx, repo, tag) {
		return nil, nil
	}
	_, desc, err := f.Resolver.Resolve(ctx, repo+":"+tag)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, nil
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
	f.fetched(desc, data)
	m, err := graph.Parse(desc.MediaType, data)
	if err != nil {
		return nil, fmt.Errorf("reading cosign tag %s:%s (%s): %w", repo, tag, desc.Digest, err)
	}
	desc.ArtifactType = cosignArtifactType(m)
	desc.Annotations = m.Annotations
	desc.URLs, desc.Platform = nil, nil
	return &Referrer{Descriptor: desc, Subject: subject, Via: ViaCosign, Tag: tag}, nil
}

// fetched hands verified manifest bytes to the caller's hook, if any.
func (f *Finder) fetched(desc ocispec.Descriptor, data []byte) {
	if f.Fetched != nil {
		f.Fetched(desc, data)
	}
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
