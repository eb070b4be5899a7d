package unpack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/containerd/platforms"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
)

// errSparse marks an index the target refused because children it lists
// are neither in the bundle nor on the target.
var errSparse = errors.New("sparse index refused")

// pushManifests pushes, in repo, every manifest below roots that is not
// there yet, children before parents, by digest. A manifest whose blobs or
// children failed is not pushed: nothing half-made lands.
func (im *importer) pushManifests(ctx context.Context, repo string, roots []digest.Digest) {
	// Manifests of one level (none a child of another) go side by side: a
	// registry answers each PUT in a round trip or two, and one at a time
	// they were most of the time of an import that had little to upload.
	for _, level := range levels(im.plan.manifestOrder(repo, roots)) {
		_ = forEach(ctx, im.concurrency, len(level), func(ctx context.Context, k int) error {
			im.pushManifest(ctx, repo, level[k])
			return nil
		})
		if ctx.Err() != nil {
			return
		}
	}
}

func (im *importer) pushManifest(ctx context.Context, repo string, n *node) {
	if _, done := im.state(repo, n.desc.Digest); done {
		return
	}
	err := im.depsError(repo, n)
	if err == nil && !im.opts.DryRun {
		err = im.reg.pushManifest(ctx, repo, "", n.pushDesc(), n.raw)
		if err != nil {
			err = im.manifestError(repo, n, err)
		}
	}
	im.setState(repo, n.desc.Digest, err)
}

// levels splits manifests in children-first order into levels: each holds
// only manifests whose child manifests are all in earlier levels.
func levels(order []*node) [][]*node {
	depth := map[digest.Digest]int{}
	var out [][]*node
	for _, n := range order {
		d := 0
		if n.m != nil {
			for _, c := range n.m.Children() {
				if cd, ok := depth[c.Digest]; ok && cd+1 > d {
					d = cd + 1
				}
			}
		}
		depth[n.desc.Digest] = d
		for len(out) <= d {
			out = append(out, nil)
		}
		out[d] = append(out[d], n)
	}
	return out
}

func (im *importer) manifestError(repo string, n *node, err error) error {
	if graph.IsIndex(n.mediaType()) && isSparseRefusal(err) && im.hasAbsentChild(n) {
		return fmt.Errorf("%w: %s refused index %s because platforms it lists are not in the bundle (registry answered %s); import with --sparse-index=single to tag the one kept platform manifest, or --sparse-index=rewrite to push a new index of the kept platforms",
			errSparse, im.reg.name(repo), n.desc.Digest, registryAnswer(err))
	}
	return fmt.Errorf("%s refused %s %s: %s: %w", im.reg.name(repo), n.mediaType(), n.desc.Digest, registryAnswer(err), err)
}

// depsError is the first reason n cannot be pushed into repo: its own
// problem, a blob that failed, or a child manifest that did. An index child
// absent from the bundle is not a reason: the target may have it, and if it
// does not, it says so when the index is pushed.
func (im *importer) depsError(repo string, n *node) error {
	if n.err != nil {
		return n.err
	}
	for _, c := range n.m.Children() {
		if graph.IsManifest(c.MediaType) {
			cn := im.plan.g.manifests[c.Digest]
			if cn != nil && errors.Is(cn.err, errAbsent) && graph.IsIndex(n.mediaType()) {
				continue
			}
			if err, _ := im.state(repo, c.Digest); err != nil {
				return fmt.Errorf("child %s: %w", c.Digest, err)
			}
			continue
		}
		im.mu.Lock()
		err := im.blobErr[c.Digest]
		im.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

func (im *importer) hasAbsentChild(n *node) bool {
	for _, c := range n.m.Manifests {
		if cn := im.plan.g.manifests[c.Digest]; cn != nil && errors.Is(cn.err, errAbsent) {
			return true
		}
	}
	return false
}

func (im *importer) state(repo string, d digest.Digest) (error, bool) {
	im.mu.Lock()
	defer im.mu.Unlock()
	err, ok := im.manifestState[repo][d]
	return err, ok
}

func (im *importer) setState(repo string, d digest.Digest, err error) {
	im.mu.Lock()
	defer im.mu.Unlock()
	if im.manifestState[repo] == nil {
		im.manifestState[repo] = map[digest.Digest]error{}
	}
	im.manifestState[repo][d] = err
}

// tagImage points the image's tag at its manifest, or, for a sparse index
// the target refused, at what opts.SparseIndex says instead.
func (im *importer) tagImage(ctx context.Context, i *image, rep *ImageReport) error {
	err, _ := im.state(i.repo, i.desc.Digest)
	if errors.Is(err, errSparse) && im.opts.SparseIndex != "" {
		return im.sparse(ctx, i, rep)
	}
	if err != nil {
		return err
	}
	if i.tag == "" || im.opts.DryRun {
		return nil
	}
	n := im.plan.g.manifests[i.desc.Digest]
	if err := im.reg.pushManifest(ctx, i.repo, i.tag, n.pushDesc(), n.raw); err != nil {
		return fmt.Errorf("tagging %s: %s: %w", im.t.ref(i.repo, i.tag, ""), registryAnswer(err), err)
	}
	im.tagged()
	return nil
}

// sparse handles an index the target refused for its absent children.
func (im *importer) sparse(ctx context.Context, i *image, rep *ImageReport) error {
	n := im.plan.g.manifests[i.desc.Digest]
	kept, platformsKept := im.keptChildren(n)
	switch im.opts.SparseIndex {
	case "single":
		if len(platformsKept) != 1 {
			return fmt.Errorf("--sparse-index=single: index %s keeps %d platforms in the bundle, not one: use --sparse-index=rewrite", n.desc.Digest, len(platformsKept))
		}
		child := im.plan.g.manifests[platformsKept[0].Digest]
		if err, _ := im.state(i.repo, child.desc.Digest); err != nil {
			return err
		}
		im.notice("%s: index %s kept one platform: tagging its manifest %s instead; signatures on the original index no longer apply (those on the platform manifest still do)",
			im.t.ref(i.repo, i.tag, i.desc.Digest), n.desc.Digest, child.desc.Digest)
		rep.Digest = child.desc.Digest.String()
		if i.tag == "" || im.opts.DryRun {
			return nil
		}
		if err := im.reg.pushManifest(ctx, i.repo, i.tag, child.pushDesc(), child.raw); err != nil {
			return fmt.Errorf("tagging %s: %w", im.t.ref(i.repo, i.tag, ""), err)
		}
	case "rewrite":
		raw, err := json.Marshal(ocispec.Index{
			Versioned:    specs.Versioned{SchemaVersion: 2},
			MediaType:    n.mediaType(),
			ArtifactType: n.m.ArtifactType,
			Manifests:    kept,
			Annotations:  n.m.Annotations,
		})
		if err != nil {
			return err
		}
		d := ocispec.Descriptor{MediaType: n.mediaType(), Digest: digest.FromBytes(raw), Size: int64(len(raw))}
		im.notice("%s: index %s lists platforms not in the bundle: pushing a new index %s of the %d kept; signatures on the original index no longer apply (those on the platform manifests still do)",
			im.t.ref(i.repo, i.tag, i.desc.Digest), n.desc.Digest, d.Digest, len(platformsKept))
		rep.Digest = d.Digest.String()
		if im.opts.DryRun {
			return nil
		}
		if err := im.reg.pushManifest(ctx, i.repo, i.tag, d, raw); err != nil {
			return fmt.Errorf("pushing rewritten index %s to %s: %s: %w", d.Digest, im.t.ref(i.repo, i.tag, d.Digest), registryAnswer(err), err)
		}
	default:
		return fmt.Errorf("--sparse-index=%q: want single or rewrite", im.opts.SparseIndex)
	}
	if i.tag != "" {
		im.tagged()
	}
	return nil
}

// keptChildren lists the index children the bundle carries, and among them
// the platform manifests (buildx attestation manifests are not platforms).
func (im *importer) keptChildren(n *node) (kept, plats []ocispec.Descriptor) {
	for _, c := range n.m.Manifests {
		cn := im.plan.g.manifests[c.Digest]
		if cn == nil || cn.err != nil {
			continue
		}
		kept = append(kept, c)
		if c.Annotations[graph.AnnotationDockerRefType] == graph.DockerRefTypeAttestation ||
			(c.Platform != nil && platforms.Format(*c.Platform) == "unknown/unknown") {
			continue
		}
		plats = append(plats, c)
	}
	return kept, plats
}

// publishReferrers pushes the referrer manifests placed in repo and makes
// the target list them: the API, or the fallback tag index.
func (im *importer) publishReferrers(ctx context.Context, repo string) error {
	bySubject := im.plan.referrersIn(repo)
	if len(bySubject) == 0 {
		return nil
	}
	var roots []digest.Digest
	for _, rs := range bySubject {
		for _, r := range rs {
			roots = append(roots, r.desc.Digest)
		}
	}
	sort.Slice(roots, func(i, j int) bool { return roots[i] < roots[j] })
	im.pushManifests(ctx, repo, roots)

	subjects := make([]digest.Digest, 0, len(bySubject))
	for s := range bySubject {
		subjects = append(subjects, s)
	}
	sort.Slice(subjects, func(i, j int) bool { return subjects[i] < subjects[j] })
	// Each subject has its own fallback tag: they do not touch each other.
	return forEach(ctx, im.concurrency, len(subjects), func(ctx context.Context, k int) error {
		return im.publishSubject(ctx, repo, bySubject[subjects[k]])
	})
}

func (im *importer) publishSubject(ctx context.Context, repo string, rs []referrer) error {
	subject := rs[0].subject
	if err, ok := im.state(repo, subject.Digest); err != nil || !ok {
		im.notice("%s: %d referrers of %s not published: their subject was not pushed", im.reg.name(repo), len(rs), subject.Digest)
		return nil
	}
	var descs []ocispec.Descriptor
	for _, r := range rs {
		if err, _ := im.state(repo, r.desc.Digest); err != nil {
			im.failReferrer(repo, r, err)
			continue
		}
		descs = append(descs, r.desc)
		// A real import counts referrers in its summary; listing each one
		// is the dry run's job, where the plan is the whole output.
		if im.opts.DryRun {
			im.notice("%s: would publish referrer %s (%s) of %s", im.reg.name(repo), r.desc.Digest, r.desc.ArtifactType, subject.Digest)
		}
	}
	if len(descs) == 0 {
		return nil
	}
	if im.opts.DryRun {
		im.countReferrers(subject.Digest, len(descs))
		return nil
	}
	mode, err := im.reg.pub.Publish(ctx, im.reg.name(repo), subject, descs)
	if err != nil {
		return fmt.Errorf("publishing %d referrers of %s in %s: %w", len(descs), subject.Digest, im.reg.name(repo), err)
	}
	im.mu.Lock()
	im.report.ReferrersMode = string(mode)
	im.mu.Unlock()
	im.countReferrers(subject.Digest, len(descs))
	return nil
}

func (im *importer) tagged() {
	im.mu.Lock()
	defer im.mu.Unlock()
	im.report.Tags++
}

func (im *importer) failReferrer(repo string, r referrer, err error) {
	msg := fmt.Sprintf("%s: referrer %s of %s: %v", im.reg.name(repo), r.desc.Digest, r.subject.Digest, err)
	im.mu.Lock()
	defer im.mu.Unlock()
	im.report.Failed = append(im.report.Failed, msg)
}

// countReferrers credits referrers to the images they (transitively) hang on.
func (im *importer) countReferrers(subject digest.Digest, n int) {
	im.mu.Lock()
	defer im.mu.Unlock()
	im.report.Referrers += n
	for k := range im.report.Images {
		if im.images[k].err == nil && im.inImage(im.images[k], subject) {
			im.report.Images[k].Referrers += n
		}
	}
}

// inImage reports whether d is the image's root, one of its manifests, or a
// referrer (of a referrer...) of them.
func (im *importer) inImage(i *image, d digest.Digest) bool {
	for depth := 0; depth < 64; depth++ {
		if d == i.desc.Digest || im.plan.g.contains(i.desc.Digest, d) {
			return true
		}
		next, ok := im.plan.subjectOf(d)
		if !ok {
			return false
		}
		d = next
	}
	return false
}

// contains reports whether manifest d is below root.
func (g *bundleGraph) contains(root, d digest.Digest) bool {
	n := g.manifests[root]
	if n == nil || n.m == nil {
		return false
	}
	for _, c := range n.m.Manifests {
		if c.Digest == d || g.contains(c.Digest, d) {
			return true
		}
	}
	return false
}

func (p *plan) subjectOf(d digest.Digest) (digest.Digest, bool) {
	for _, r := range p.referrers {
		if r.desc.Digest == d {
			return r.subject.Digest, true
		}
	}
	return "", false
}

// tagCosign pushes cosign .sig/.att/.sbom manifests and their tags.
func (im *importer) tagCosign(ctx context.Context, i *image) error {
	im.pushManifests(ctx, i.repo, []digest.Digest{i.desc.Digest})
	if err, _ := im.state(i.repo, i.desc.Digest); err != nil {
		return err
	}
	if im.opts.DryRun {
		return nil
	}
	n := im.plan.g.manifests[i.desc.Digest]
	if err := im.reg.pub.Tag(ctx, im.reg.name(i.repo), i.tag, n.pushDesc()); err != nil {
		return err
	}
	im.tagged()
	return nil
}
