package unpack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/containerd/platforms"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
)

// errSparse marks an index the target refused because children it lists
// are neither in the bundle nor on the target.
var errSparse = errors.New("sparse index refused")

// pushLevels pushes, in repo, the manifests of levels that are not there
// yet, children before parents, by digest. A manifest whose blobs or
// children failed is not pushed: nothing half-made lands.
func (im *importer) pushLevels(ctx context.Context, rp *repoPlan, levels [][]*graph.Node, check bool) {
	// Manifests of one level (none a child of another) go side by side: a
	// registry answers each PUT in a round trip or two, and one at a time
	// they were most of the time of an import that had little to upload.
	for _, level := range levels {
		_ = forEach(ctx, im.opts.Concurrency, len(level), func(ctx context.Context, k int) error {
			im.pushManifest(ctx, rp, level[k], check)
			return nil
		})
		if ctx.Err() != nil {
			return
		}
	}
}

// check asks the target first (a HEAD), for manifests the preflight did
// not find missing.
func (im *importer) pushManifest(ctx context.Context, rp *repoPlan, n *graph.Node, check bool) {
	repo := rp.name
	if _, done := im.state(repo, n.Desc.Digest); done {
		return
	}
	err := im.depsError(repo, n)
	if err == nil && !im.opts.DryRun {
		// An image's manifest goes up under its tag: one request stores
		// and tags it.
		tag := ""
		if tags := rp.tags[n.Desc.Digest]; len(tags) > 0 {
			tag = tags[0]
		}
		push := im.reg.pushManifest
		if check {
			push = im.reg.ensureManifest
		}
		err = push(ctx, repo, tag, n.PushDesc(), n.Raw)
		if err != nil {
			err = im.manifestError(repo, n, err)
		} else if tag != "" {
			im.mu.Lock()
			im.tagsDone[repo+":"+tag] = true
			im.mu.Unlock()
		}
	}
	im.setState(repo, n.Desc.Digest, err)
}

func (im *importer) manifestError(repo string, n *graph.Node, err error) error {
	if graph.IsIndex(n.MediaType()) && isSparseRefusal(err) && im.hasAbsentChild(n) {
		return fmt.Errorf("%w: %s refused index %s because platforms it lists are not in the bundle (registry answered %s); import with --sparse-index=single to tag the one kept platform manifest, or --sparse-index=rewrite to push a new index of the kept platforms",
			errSparse, im.reg.name(repo), n.Desc.Digest, registryAnswer(err))
	}
	return fmt.Errorf("%s refused %s %s: %s: %w", im.reg.name(repo), n.MediaType(), n.Desc.Digest, registryAnswer(err), err)
}

// depsError is the first reason n cannot be pushed into repo: its own
// problem, a blob that failed, or a child manifest that did. An index child
// absent from the bundle is not a reason: the target may have it, and if it
// does not, it says so when the index is pushed.
func (im *importer) depsError(repo string, n *graph.Node) error {
	if n.Err != nil {
		return n.Err
	}
	for _, c := range n.Children() {
		if graph.IsManifest(c.MediaType) {
			cn := im.node(c.Digest)
			if cn != nil && errors.Is(cn.Err, graph.ErrAbsent) && graph.IsIndex(n.MediaType()) {
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

func (im *importer) hasAbsentChild(n *graph.Node) bool {
	for _, c := range n.Manifest.Manifests {
		if cn := im.node(c.Digest); cn != nil && errors.Is(cn.Err, graph.ErrAbsent) {
			return true
		}
	}
	return false
}

// tagImage points the image's tag at its manifest, or, for a sparse index
// the target refused, at what opts.SparseIndex says instead.
func (im *importer) tagImage(ctx context.Context, i *image, rep *ImageReport) error {
	err, _ := im.state(i.repo, i.root.Desc.Digest)
	if errors.Is(err, errSparse) && im.opts.SparseIndex != "" {
		return im.sparse(ctx, i, rep)
	}
	if err != nil {
		return err
	}
	if i.tag == "" || im.opts.DryRun || i.there {
		return nil
	}
	im.mu.Lock()
	done := im.tagsDone[i.repo+":"+i.tag]
	im.mu.Unlock()
	if !done {
		n := i.node()
		if err := im.reg.pushManifest(ctx, i.repo, i.tag, n.PushDesc(), n.Raw); err != nil {
			return fmt.Errorf("tagging %s: %s: %w", im.t.ref(i.repo, i.tag, ""), registryAnswer(err), err)
		}
	}
	im.tagged()
	return nil
}

// substitute is what --sparse-index tags in place of an index the
// target refuses: the one kept platform manifest, or a new index of the
// kept platforms.
func (im *importer) substitute(n *graph.Node) (ocispec.Descriptor, []byte, error) {
	kept, platformsKept := im.keptChildren(n)
	switch im.opts.SparseIndex {
	case "single":
		if len(platformsKept) != 1 {
			return ocispec.Descriptor{}, nil, fmt.Errorf("--sparse-index=single: index %s keeps %d platforms in the bundle, not one: use --sparse-index=rewrite", n.Desc.Digest, len(platformsKept))
		}
		child := im.node(platformsKept[0].Digest)
		return child.PushDesc(), child.Raw, nil
	case "rewrite":
		raw, err := json.Marshal(ocispec.Index{
			Versioned:    specs.Versioned{SchemaVersion: 2},
			MediaType:    n.MediaType(),
			ArtifactType: n.Manifest.ArtifactType,
			Manifests:    kept,
			Annotations:  n.Manifest.Annotations,
		})
		if err != nil {
			return ocispec.Descriptor{}, nil, err
		}
		return ocispec.Descriptor{MediaType: n.MediaType(), Digest: digest.FromBytes(raw), Size: int64(len(raw))}, raw, nil
	}
	return ocispec.Descriptor{}, nil, fmt.Errorf("--sparse-index=%q: want single or rewrite", im.opts.SparseIndex)
}

// sparse tags the substitute of an index the target refused for its
// absent children.
func (im *importer) sparse(ctx context.Context, i *image, rep *ImageReport) error {
	n := i.node()
	d, raw, err := im.substitute(n)
	if err != nil {
		return err
	}
	if err, _ := im.state(i.repo, d.Digest); err != nil {
		return err
	}
	what := fmt.Sprintf("pushing a new index %s of the platforms kept", d.Digest)
	if im.opts.SparseIndex == "single" {
		what = fmt.Sprintf("tagging its one kept platform manifest %s instead", d.Digest)
	}
	im.notice("%s: index %s lists platforms not in the bundle: %s; signatures on the original index no longer apply (those on the platform manifests still do)",
		im.t.ref(i.repo, i.tag, i.root.Desc.Digest), n.Desc.Digest, what)
	rep.Digest = d.Digest.String()
	if im.opts.DryRun || (i.tag == "" && im.opts.SparseIndex == "single") || i.there {
		if i.tag != "" {
			im.tagged()
		}
		return nil
	}
	if err := im.reg.ensureManifest(ctx, i.repo, i.tag, d, raw); err != nil {
		return fmt.Errorf("pushing %s to %s: %s: %w", d.Digest, im.t.ref(i.repo, i.tag, d.Digest), registryAnswer(err), err)
	}
	if i.tag != "" {
		im.tagged()
	}
	return nil
}

// keptChildren lists the index children the bundle carries, and among them
// the platform manifests (buildx attestation manifests are not platforms).
func (im *importer) keptChildren(n *graph.Node) (kept, plats []ocispec.Descriptor) {
	for _, c := range n.Manifest.Manifests {
		cn := im.node(c.Digest)
		if cn == nil || cn.Err != nil {
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

// publishReferrers pushes the referrer manifests placed in rp and makes
// the target list them: the API, or the fallback tag index.
func (im *importer) publishReferrers(ctx context.Context, rp *repoPlan) error {
	if len(rp.referrers) == 0 {
		return nil
	}
	im.pushLevels(ctx, rp, rp.refLevels, true)
	subjects := slices.Sorted(maps.Keys(rp.referrers))
	// Each subject has its own fallback tag: they do not touch each other.
	return forEach(ctx, im.opts.Concurrency, len(subjects), func(ctx context.Context, k int) error {
		return im.publishSubject(ctx, rp.name, im.node(subjects[k]), rp.referrers[subjects[k]])
	})
}

func (im *importer) publishSubject(ctx context.Context, repo string, subject *graph.Node, rs []*graph.Node) error {
	if err, ok := im.state(repo, subject.Desc.Digest); err != nil || !ok {
		im.notice("%s: %d referrers of %s not published: their subject was not pushed", im.reg.name(repo), len(rs), subject.Desc.Digest)
		return nil
	}
	var descs []ocispec.Descriptor
	for _, r := range rs {
		if err, _ := im.state(repo, r.Desc.Digest); err != nil {
			im.failReferrer(repo, r, subject, err)
			continue
		}
		d := referrerDesc(r)
		descs = append(descs, d)
		// A real import counts referrers in its summary; listing each one
		// is the dry run's job, where the plan is the whole output.
		if im.opts.DryRun {
			im.notice("%s: would publish referrer %s (%s) of %s", im.reg.name(repo), d.Digest, d.ArtifactType, subject.Desc.Digest)
		}
	}
	if len(descs) == 0 {
		return nil
	}
	if !im.opts.DryRun {
		mode, err := im.reg.pub.Publish(ctx, im.reg.name(repo), subject.PushDesc(), descs)
		if err != nil {
			return fmt.Errorf("publishing %d referrers of %s in %s: %w", len(descs), subject.Desc.Digest, im.reg.name(repo), err)
		}
		im.mu.Lock()
		im.report.ReferrersMode = string(mode)
		im.mu.Unlock()
	}
	im.mu.Lock()
	im.report.Referrers += len(descs)
	im.mu.Unlock()
	return nil
}

// referrerDesc is the descriptor a referrers list carries for n.
func referrerDesc(n *graph.Node) ocispec.Descriptor {
	d := n.PushDesc()
	d.ArtifactType = n.Manifest.ArtifactTypeOf()
	d.Annotations = n.Manifest.Annotations
	return d
}

func (im *importer) tagged() {
	im.mu.Lock()
	defer im.mu.Unlock()
	im.report.Tags++
}

func (im *importer) failReferrer(repo string, r, subject *graph.Node, err error) {
	msg := fmt.Sprintf("%s: referrer %s of %s: %v", im.reg.name(repo), r.Desc.Digest, subject.Desc.Digest, err)
	im.mu.Lock()
	defer im.mu.Unlock()
	im.report.Failed = append(im.report.Failed, msg)
}

// tagCosign pushes cosign .sig/.att/.sbom manifests and their tags.
func (im *importer) tagCosign(ctx context.Context, i *image) error {
	if err, _ := im.state(i.repo, i.root.Desc.Digest); err != nil {
		return err
	}
	if im.opts.DryRun {
		return nil
	}
	n := i.node()
	if err := im.reg.pub.Tag(ctx, im.reg.name(i.repo), i.tag, n.PushDesc()); err != nil {
		return err
	}
	im.tagged()
	return nil
}
