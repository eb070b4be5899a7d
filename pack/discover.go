package pack

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/platforms"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/semaphore"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/referrers"
)

// referrerFinder is what the planner needs from referrers.Finder: the direct
// referrers of one manifest, whatever scheme the registry uses.
type referrerFinder interface {
	Find(ctx context.Context, repo string, subject ocispec.Descriptor) ([]referrers.Referrer, error)
}

// root is one resolved reference.
type root struct {
	ref  string // normalised
	repo string // host/repo
	desc ocispec.Descriptor
	w    *walkOpts // how to walk it: the command line's, or its spec entry's
}

// entry is a manifest or index met by the discovery.
type entry struct {
	desc      ocispec.Descriptor
	repo      string
	manifest  *graph.Manifest
	children  []ocispec.Descriptor // after platform and foreign-layer filtering
	referrers []foundReferrer
	// platform is a root image manifest's, from its config; all lists an
	// index's platforms before filtering.
	platform *ocispec.Platform
	all      []string
	// dropped are the artifact types of referrers --artifact-type left out.
	dropped []string
}

type foundReferrer struct {
	referrers.Referrer
	cosign bool
}

// discovery walks the graph from registries, concurrently, as a chain of
// containerd image handlers; what it learns is kept in entries and
// assembled into a Plan afterwards.
//
// What to keep (platforms, referrers, artifact types) is each root's: a
// manifest reached by two roots of one repository with different options is
// walked once, with the options of whichever got to it first.
type discovery struct {
	src     *source
	notice  func(string, ...any)
	limiter *semaphore.Weighted

	// found, if set, is told of every blob the walk keeps, as it meets it.
	found func(repo string, desc ocispec.Descriptor)

	mu      sync.Mutex
	entries map[entryKey]*entry
	skipped []string
}

// entryKey names a manifest in one repository. Roots are walked at the same
// time; keying by repository keeps what each finds (referrers live in a
// repository) independent of which got to a shared manifest first.
type entryKey struct {
	repo string
	d    digest.Digest
}

func newDiscovery(src *source, limiter *semaphore.Weighted, notice func(string, ...any)) *discovery {
	return &discovery{
		src:     src,
		notice:  notice,
		limiter: limiter,
		entries: map[entryKey]*entry{},
	}
}

// walk discovers everything reachable from rt.
func (g *discovery) walk(ctx context.Context, rt root) error {
	return images.Dispatch(ctx, g.handler(rt), g.limiter, rt.desc)
}

// handler composes the walk, outermost first: cycle guard, referrer
// discovery, recording, foreign-layer skipping, platform filter, children.
func (g *discovery) handler(rt root) images.Handler {
	var h images.HandlerFunc = g.children(rt)
	h = filterPlatforms(rt.w.matcher, h)
	h = g.skipForeign(rt, h)
	h = g.record(rt, h)
	h = g.withReferrers(rt, h)
	return g.guard(rt, h)
}

// guard lets each manifest be walked once per repository across all
// roots, which is both the dedup and the cycle guard (a referrer pointing
// back at its subject's ancestors ends here), and stops at blobs.
func (g *discovery) guard(rt root, h images.HandlerFunc) images.HandlerFunc {
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		if err := desc.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("%s: the registry lists an invalid digest %q: %w", rt.ref, desc.Digest, err)
		}
		if graph.IsSchema1(desc.MediaType) {
			return nil, fmt.Errorf("%s: %s: %w", rt.ref, desc.Digest, graph.ErrSchema1)
		}
		if !graph.IsManifest(desc.MediaType) {
			if g.found != nil {
				g.found(rt.repo, desc)
			}
			return nil, images.ErrSkipDesc
		}
		k := entryKey{rt.repo, desc.Digest}
		g.mu.Lock()
		if _, ok := g.entries[k]; ok {
			g.mu.Unlock()
			return nil, images.ErrSkipDesc
		}
		g.entries[k] = &entry{desc: desc, repo: rt.repo}
		g.mu.Unlock()
		return h(ctx, desc)
	}
}

// children reads a manifest (from the cache, or from the registry into the
// cache) and lists its children.
func (g *discovery) children(rt root) images.HandlerFunc {
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		data, err := g.src.manifest(ctx, rt.repo, desc)
		if err != nil {
			return nil, fmt.Errorf("%s: reading manifest %s: %w", rt.ref, desc.Digest, err)
		}
		m, err := graph.Parse(desc.MediaType, data)
		if err != nil {
			return nil, fmt.Errorf("%s: manifest %s: %w", rt.ref, desc.Digest, err)
		}
		var plat *ocispec.Platform
		if desc.Digest == rt.desc.Digest && !graph.IsIndex(desc.MediaType) && m.Config != nil && isImageConfig(m.Config.MediaType) {
			// A single-platform image says its platform in its config: read
			// now, it is held for the archive and not fetched again.
			cfg, err := g.src.manifest(ctx, rt.repo, *m.Config)
			if err != nil {
				return nil, fmt.Errorf("%s: reading config %s: %w", rt.ref, m.Config.Digest, err)
			}
			plat = configPlatform(cfg)
		}
		g.mu.Lock()
		e := g.entries[entryKey{rt.repo, desc.Digest}]
		e.manifest, e.platform = m, plat
		for _, c := range m.Manifests {
			if c.Platform != nil && !isAttestation(c) && c.Platform.OS != "unknown" {
				e.all = append(e.all, platforms.Format(*c.Platform))
			}
		}
		g.mu.Unlock()
		if plat != nil && rt.w.matcher != nil && !rt.w.matcher.Match(*plat) {
			return nil, nil // left out: checked against --allow-empty later
		}
		return m.Children(), nil
	}
}

func isImageConfig(mt string) bool {
	return mt == ocispec.MediaTypeImageConfig || mt == "application/vnd.docker.container.image.v1+json"
}

// configPlatform reads os, architecture and variant from an image config.
func configPlatform(data []byte) *ocispec.Platform {
	var c struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
	}
	if json.Unmarshal(data, &c) != nil || c.OS == "" || c.Architecture == "" {
		return nil
	}
	return &ocispec.Platform{OS: c.OS, Architecture: c.Architecture, Variant: c.Variant}
}

// filterPlatforms keeps, in an index, the children of the wanted platforms,
// the children that name no platform, and the buildx attestations of the
// children kept. The index itself is not rewritten: it becomes sparse.
func filterPlatforms(m platforms.Matcher, h images.HandlerFunc) images.HandlerFunc {
	if m == nil {
		return h
	}
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		children, err := h(ctx, desc)
		if err != nil || !graph.IsIndex(desc.MediaType) {
			return children, err
		}
		kept := map[digest.Digest]bool{}
		for _, c := range children {
			if !isAttestation(c) && (c.Platform == nil || m.Match(*c.Platform)) {
				kept[c.Digest] = true
			}
		}
		var out []ocispec.Descriptor
		for _, c := range children {
			if kept[c.Digest] || (isAttestation(c) && kept[digest.Digest(c.Annotations[graph.AnnotationDockerRefDigest])]) {
				out = append(out, c)
			}
		}
		return out, nil
	}
}

func isAttestation(d ocispec.Descriptor) bool {
	return d.Annotations[graph.AnnotationDockerRefType] == graph.DockerRefTypeAttestation
}

// skipForeign leaves out non-distributable layers: registries refuse them
// and they are meant to be fetched from their own URLs on the far side.
func (g *discovery) skipForeign(rt root, h images.HandlerFunc) images.HandlerFunc {
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		children, err := h(ctx, desc)
		if err != nil {
			return nil, err
		}
		out := children[:0:0]
		for _, c := range children {
			if !graph.IsForeign(c) {
				out = append(out, c)
				continue
			}
			g.mu.Lock()
			g.skipped = append(g.skipped, rt.ref+": "+c.Digest.String())
			g.mu.Unlock()
			if g.notice != nil {
				g.notice("skipping foreign layer %s of %s: non-distributable layers are not carried; the far side must fetch it from its URL", c.Digest, rt.ref)
			}
		}
		return out, nil
	}
}

// record remembers a manifest's (filtered) children for the assembly.
func (g *discovery) record(rt root, h images.HandlerFunc) images.HandlerFunc {
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		children, err := h(ctx, desc)
		if err != nil {
			return nil, err
		}
		g.mu.Lock()
		g.entries[entryKey{rt.repo, desc.Digest}].children = children
		g.mu.Unlock()
		return children, nil
	}
}

// withReferrers adds the direct referrers of every manifest node to the
// walk, so referrers of referrers are found to any depth.
func (g *discovery) withReferrers(rt root, h images.HandlerFunc) images.HandlerFunc {
	if rt.w.finder == nil {
		return h
	}
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		children, err := h(ctx, desc)
		if err != nil {
			return nil, err
		}
		subject := clean(desc)
		rs, err := rt.w.finder.Find(ctx, rt.repo, subject)
		if err != nil {
			return nil, fmt.Errorf("%s: finding referrers of %s: %w", rt.ref, desc.Digest, err)
		}
		var dropped []string
		if types := rt.w.types; len(types) > 0 {
			kept := referrers.Filter(rs, types)
			for _, r := range rs {
				if !slices.Contains(types, r.Descriptor.ArtifactType) && !slices.Contains(dropped, r.Descriptor.ArtifactType) {
					dropped = append(dropped, r.Descriptor.ArtifactType)
				}
			}
			rs = kept
		}
		var found []foundReferrer
		out := slices.Clone(children)
		for _, r := range rs {
			if r.Descriptor.Digest == desc.Digest || isFallbackIndex(r, desc.Digest) {
				continue
			}
			found = append(found, foundReferrer{Referrer: r, cosign: isCosign(r)})
			out = append(out, r.Descriptor)
		}
		g.mu.Lock()
		e := g.entries[entryKey{rt.repo, desc.Digest}]
		e.referrers, e.dropped = found, dropped
		g.mu.Unlock()
		return out, nil
	}
}

// isFallbackIndex guards against a finder handing back the source's
// fallback tag index itself: the importer builds its own.
func isFallbackIndex(r referrers.Referrer, subject digest.Digest) bool {
	return graph.IsIndex(r.Descriptor.MediaType) && r.Tag == graph.FallbackTag(subject)
}

// isCosign reports whether r was found through a cosign tag
// (<alg>-<hex>.sig, .att, .sbom), whose tag import must recreate.
func isCosign(r referrers.Referrer) bool {
	return r.Via == referrers.ViaCosign && r.Tag != ""
}

func (g *discovery) get(repo string, d digest.Digest) *entry {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.entries[entryKey{repo, d}]
}

func (g *discovery) skippedList() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := slices.Clone(g.skipped)
	slices.Sort(out)
	return slices.Compact(out)
}

// platformsOf lists the platforms kept of a root: an index's children,
// or a single image's own platform.
func (g *discovery) platformsOf(rt root) []string {
	e := g.get(rt.repo, rt.desc.Digest)
	if e != nil && e.platform != nil {
		if rt.w.matcher != nil && !rt.w.matcher.Match(*e.platform) {
			return nil
		}
		return []string{platforms.Format(*e.platform)}
	}
	if e == nil || e.manifest == nil || !graph.IsIndex(e.desc.MediaType) {
		return nil
	}
	var out []string
	for _, c := range e.children {
		if c.Platform == nil || isAttestation(c) || c.Platform.OS == "unknown" {
			continue
		}
		if p := platforms.Format(*c.Platform); !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

func roleOf(d ocispec.Descriptor) Role {
	if graph.IsIndex(d.MediaType) {
		return RoleIndex
	}
	return RoleManifest
}

// childRole names the role of child c of manifest e.
func childRole(e *entry, c ocispec.Descriptor) Role {
	switch {
	case graph.IsIndex(c.MediaType):
		return RoleIndex
	case graph.IsManifest(c.MediaType) && isAttestation(c):
		return RoleAttestation
	case graph.IsManifest(c.MediaType):
		return RoleManifest
	case e.manifest.Config != nil && c.Digest == e.manifest.Config.Digest:
		return RoleConfig
	}
	return RoleLayer
}
