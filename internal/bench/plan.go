// Package bench is the benchmark harness behind `make bench`: a seeded data
// set pushed into a real registry process, floors measured on the same bytes,
// timed runs of the bundle binary, and the table that compares them.
package bench

import (
	"fmt"
	"math/rand/v2"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The shape of the data set. It mirrors a small but realistic mirror: a few
// multi-platform images, two Docker-built ones, shared base layers, and
// referrer trees two levels deep (a signature on an SBOM).
const (
	numRepos         = 10
	numIndexes       = 3  // amd64+arm64 each
	numSingles       = 10 // single-platform images, the first numDocker of them Docker schema 2
	numDocker        = 2
	numImages        = numIndexes*2 + numSingles // 16
	numTopLevel      = numIndexes + numSingles   // 13
	numBaseLayers    = 3
	numTextLayers    = 3
	numScanReports   = 7
	twoAppLayerLimit = 10 // images below this index carry two app layers, the rest one
)

// Artifact types of the referrers, as the tools that make them set them.
const (
	ArtifactSBOM      = "application/spdx+json"
	ArtifactSignature = "application/vnd.dev.sigstore.bundle.v0.3+json"
	ArtifactScan      = "application/sarif+json"
)

// LayerKind says how a layer's bytes are generated.
type LayerKind int

const (
	// Random bytes stored under a gzip media type: registries do not look
	// inside, and real gzip of random data would cost more than everything
	// measured.
	Random LayerKind = iota
	// Text is uncompressed, compressible text (configuration files, docs).
	Text
)

// Layer is one layer blob of the plan; its bytes come from Seed.
type Layer struct {
	Name      string
	MediaType string
	Kind      LayerKind
	Size      int64
	Seed      uint64
}

// Image is one image manifest.
type Image struct {
	Repo     string
	Docker   bool // Docker schema 2 media types instead of OCI
	Platform ocispec.Platform
	Layers   []int // indexes into Plan.Layers, base first
}

// Index is a multi-platform image index over two images.
type Index struct {
	Repo   string
	Images []int // indexes into Plan.Images
}

// NodeKind names what a Node points at.
type NodeKind int

const (
	NodeImage NodeKind = iota
	NodeIndex
	NodeReferrer
)

// Node points at a manifest of the plan.
type Node struct {
	Kind NodeKind
	ID   int
}

// Tag is a tag of the plan and the manifest it names.
type Tag struct {
	Repo, Tag string
	Target    Node
}

// Referrer is an artifact manifest whose subject is Subject, carrying one
// payload blob of PayloadSize bytes.
type Referrer struct {
	Repo         string
	Subject      Node
	ArtifactType string
	PayloadSize  int64
}

// Plan is the data set as a value: cheap to make, no bytes generated yet.
type Plan struct {
	Size      int64
	Seed      uint64
	Repos     []string
	Layers    []Layer
	Images    []Image
	Indexes   []Index
	Tags      []Tag
	Referrers []Referrer
}

// MinSize is the smallest data set whose layers still have content.
const MinSize = 1 << 20

// NewPlan lays out a data set of about size unique bytes from seed. The same
// (size, seed) always gives the same plan and, later, the same bytes.
func NewPlan(size int64, seed uint64) (*Plan, error) {
	if size < MinSize {
		return nil, fmt.Errorf("data set size %d bytes is too small: use at least 1MiB (for example -size 200MiB)", size)
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	p := &Plan{Size: size, Seed: seed}
	for i := range numRepos {
		p.Repos = append(p.Repos, fmt.Sprintf("bench/app%02d", i))
	}
	p.addImages(rng)
	p.addTags()
	p.addReferrers()
	p.sizeLayers(rng)
	return p, nil
}

// repoOfTop is the repository of top-level manifest t: the first numRepos go
// one per repository, the rest become second tags in the first repositories.
func (p *Plan) repoOfTop(t int) string { return p.Repos[t%numRepos] }

func (p *Plan) addLayer(rng *rand.Rand, name, mediaType string, kind LayerKind) int {
	p.Layers = append(p.Layers, Layer{Name: name, MediaType: mediaType, Kind: kind, Seed: rng.Uint64()})
	return len(p.Layers) - 1
}

func (p *Plan) addImages(rng *rand.Rand) {
	// Base layers are what repositories share: one per platform of the
	// indexes, and a second amd64 distribution.
	baseAMD := p.addLayer(rng, "base-amd64", ocispec.MediaTypeImageLayerGzip, Random)
	baseARM := p.addLayer(rng, "base-arm64", ocispec.MediaTypeImageLayerGzip, Random)
	base2 := p.addLayer(rng, "base2-amd64", ocispec.MediaTypeImageLayerGzip, Random)

	for x := range numIndexes {
		repo := p.repoOfTop(x)
		amd := p.addImage(rng, repo, false, "amd64", baseAMD)
		arm := p.addImage(rng, repo, false, "arm64", baseARM)
		p.Indexes = append(p.Indexes, Index{Repo: repo, Images: []int{amd, arm}})
	}
	textLeft := numTextLayers
	for s := range numSingles {
		base := baseAMD
		if s%2 == 1 {
			base = base2
		}
		docker := s < numDocker
		img := p.addImage(rng, p.repoOfTop(numIndexes+s), docker, "amd64", base)
		if !docker && s%3 == 0 && textLeft > 0 {
			textLeft--
			l := p.addLayer(rng, fmt.Sprintf("text%d", numTextLayers-textLeft-1), ocispec.MediaTypeImageLayer, Text)
			p.Images[img].Layers = append(p.Images[img].Layers, l)
		}
	}
}

func (p *Plan) addImage(rng *rand.Rand, repo string, docker bool, arch string, base int) int {
	id := len(p.Images)
	mt := ocispec.MediaTypeImageLayerGzip
	if docker {
		mt = dockerLayerGzip
	}
	img := Image{Repo: repo, Docker: docker, Platform: ocispec.Platform{OS: "linux", Architecture: arch}, Layers: []int{base}}
	apps := 1
	if id < twoAppLayerLimit {
		apps = 2
	}
	for a := range apps {
		img.Layers = append(img.Layers, p.addLayer(rng, fmt.Sprintf("img%02d-app%d", id, a), mt, Random))
	}
	p.Images = append(p.Images, img)
	return id
}

// topNode is top-level manifest t: the indexes first, then the single images.
func (p *Plan) topNode(t int) Node {
	if t < numIndexes {
		return Node{Kind: NodeIndex, ID: t}
	}
	return Node{Kind: NodeImage, ID: numIndexes*2 + t - numIndexes}
}

func (p *Plan) addTags() {
	for t := range numTopLevel {
		tag := "1.0"
		if t >= numRepos {
			tag = "2.0"
		}
		p.Tags = append(p.Tags, Tag{Repo: p.repoOfTop(t), Tag: tag, Target: p.topNode(t)})
	}
	// One alias, as every real repository has: latest next to a version.
	p.Tags = append(p.Tags, Tag{Repo: p.repoOfTop(numIndexes), Tag: "latest", Target: p.topNode(numIndexes)})
}

// RepoOf is the repository a manifest of the plan lives in.
func (p *Plan) RepoOf(n Node) string {
	switch n.Kind {
	case NodeIndex:
		return p.Indexes[n.ID].Repo
	case NodeReferrer:
		return p.Referrers[n.ID].Repo
	default:
		return p.Images[n.ID].Repo
	}
}

func (p *Plan) addReferrer(subject Node, artifactType string) int {
	p.Referrers = append(p.Referrers, Referrer{Repo: p.RepoOf(subject), Subject: subject, ArtifactType: artifactType})
	return len(p.Referrers) - 1
}

func (p *Plan) addReferrers() {
	var sboms []int
	for i := range p.Images {
		sboms = append(sboms, p.addReferrer(Node{Kind: NodeImage, ID: i}, ArtifactSBOM))
	}
	for t := range numTopLevel {
		p.addReferrer(p.topNode(t), ArtifactSignature)
	}
	for i := range numScanReports {
		p.addReferrer(Node{Kind: NodeImage, ID: 2 * i}, ArtifactScan)
	}
	// The nested level: each SBOM is signed on its own.
	for _, s := range sboms {
		p.addReferrer(Node{Kind: NodeReferrer, ID: s}, ArtifactSignature)
	}
}

// sizeLayers spreads the byte budget: small fixed-ratio payloads for
// referrers and text layers, the rest over the gzip layers by weight, base
// layers heaviest as in real images.
func (p *Plan) sizeLayers(rng *rand.Rand) {
	budget := p.Size
	for i := range p.Referrers {
		r := &p.Referrers[i]
		switch r.ArtifactType {
		case ArtifactSBOM:
			r.PayloadSize = clamp(p.Size/4096, 2<<10, 256<<10)
		case ArtifactScan:
			r.PayloadSize = clamp(p.Size/8192, 1<<10, 128<<10)
		default:
			r.PayloadSize = 1 << 10
		}
		budget -= r.PayloadSize
	}
	var weights []int64
	var total int64
	for i := range p.Layers {
		l := &p.Layers[i]
		if l.Kind == Text {
			l.Size = p.Size / 100
			budget -= l.Size
			weights = append(weights, 0)
			continue
		}
		w := int64(1 + rng.IntN(4))
		if i < numBaseLayers {
			w = 6
		}
		weights = append(weights, w)
		total += w
	}
	last := -1
	left := budget
	for i, w := range weights {
		if w == 0 {
			continue
		}
		p.Layers[i].Size = budget * w / total
		left -= p.Layers[i].Size
		last = i
	}
	p.Layers[last].Size += left
}

func clamp(v, lo, hi int64) int64 {
	return max(lo, min(v, hi))
}

// Counts summarises a plan's shape.
type Counts struct {
	Repos, Tags, Images, Docker, Indexes      int
	GzipLayers, TextLayers, SharedAcrossRepos int
	Referrers, Nested                         int
	LayerBytes, PayloadBytes                  int64
}

// Count reports the plan's shape, for the tests and the report header.
func (p *Plan) Count() Counts {
	c := Counts{Repos: len(p.Repos), Tags: len(p.Tags), Images: len(p.Images), Indexes: len(p.Indexes)}
	for _, img := range p.Images {
		if img.Docker {
			c.Docker++
		}
	}
	repos := map[int]map[string]bool{}
	for _, img := range p.Images {
		for _, l := range img.Layers {
			if repos[l] == nil {
				repos[l] = map[string]bool{}
			}
			repos[l][img.Repo] = true
		}
	}
	for i, l := range p.Layers {
		if l.Kind == Text {
			c.TextLayers++
		} else {
			c.GzipLayers++
		}
		if len(repos[i]) > 1 {
			c.SharedAcrossRepos++
		}
		c.LayerBytes += l.Size
	}
	for _, r := range p.Referrers {
		c.Referrers++
		if r.Subject.Kind == NodeReferrer {
			c.Nested++
		}
		c.PayloadBytes += r.PayloadSize
	}
	return c
}

// Docker schema 2's layer media types, gzip and uncompressed.
const (
	dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	dockerLayer     = "application/vnd.docker.image.rootfs.diff.tar"
)

// Media types of the configs.
const (
	dockerConfig = "application/vnd.docker.container.image.v1+json"
)
