package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"sync"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
)

// Item is one object to push: a small document held in Data, or a layer
// generated from Layer while it streams.
type Item struct {
	Repo  string
	Desc  ocispec.Descriptor
	Data  []byte
	Layer *Layer
	Tags  []string // manifests only: the tags it is pushed under
}

// Open streams the item's bytes.
func (it Item) Open() io.Reader {
	if it.Layer != nil {
		return it.Layer.Open()
	}
	return bytes.NewReader(it.Data)
}

// DataSet is a plan with its digests worked out and its documents written,
// in push order.
type DataSet struct {
	Plan *Plan
	// Blobs holds every blob once; BlobRepos lists every repository that
	// needs it, the first being where it is uploaded and the rest mounts.
	Blobs     []Item
	BlobRepos map[digest.Digest][]string
	Manifests []Item // children before parents, subjects before referrers
	Fallback  []Item // referrers tag schema indexes, after every referrer
	// UniqueBytes is what a bundle of every tag carries: each blob and
	// manifest once, no fallback indexes.
	UniqueBytes int64
	Refs        []string // repo:tag of every tag
}

// Build hashes the layers (using every core) and writes the configs,
// manifests, indexes, referrers and fallback indexes of p.
func Build(ctx context.Context, p *Plan) (*DataSet, error) {
	layerDesc, err := hashLayers(ctx, p.Layers)
	if err != nil {
		return nil, err
	}
	b := &builder{p: p, ds: &DataSet{Plan: p, BlobRepos: map[digest.Digest][]string{}},
		nodes: map[Node]ocispec.Descriptor{}, seen: map[digest.Digest]bool{}}
	for i := range p.Images {
		if err := b.image(i, layerDesc); err != nil {
			return nil, err
		}
	}
	for i := range p.Indexes {
		if err := b.index(i); err != nil {
			return nil, err
		}
	}
	if err := b.referrers(); err != nil {
		return nil, err
	}
	b.tags()
	return b.ds, nil
}

// hashLayers generates each layer once to learn its digest: a monolithic
// upload names the digest before the first byte, and there are no temp files.
func hashLayers(ctx context.Context, layers []Layer) ([]ocispec.Descriptor, error) {
	out := make([]ocispec.Descriptor, len(layers))
	errs := make([]error, len(layers))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, l := range layers {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := ctx.Err(); err != nil {
				errs[i] = err
				return
			}
			d := digest.Canonical.Digester()
			if _, err := io.Copy(d.Hash(), l.Open()); err != nil {
				errs[i] = fmt.Errorf("generating layer %s: %w", l.Name, err)
				return
			}
			out[i] = ocispec.Descriptor{MediaType: l.MediaType, Digest: d.Digest(), Size: l.Size}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

type builder struct {
	p     *Plan
	ds    *DataSet
	nodes map[Node]ocispec.Descriptor
	seen  map[digest.Digest]bool
}

func (b *builder) addBlob(repo string, it Item) {
	d := it.Desc.Digest
	for _, r := range b.ds.BlobRepos[d] {
		if r == repo {
			return
		}
	}
	b.ds.BlobRepos[d] = append(b.ds.BlobRepos[d], repo)
	if b.seen[d] {
		return
	}
	b.seen[d] = true
	it.Repo = repo
	b.ds.Blobs = append(b.ds.Blobs, it)
	b.ds.UniqueBytes += it.Desc.Size
}

func (b *builder) addManifest(repo string, n Node, mediaType string, doc any) (ocispec.Descriptor, error) {
	data, err := json.Marshal(doc)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("encoding %s manifest %d: %w", repo, n.ID, err)
	}
	if _, err := graph.Parse(mediaType, data); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("manifest %d of %s does not parse back: %w", n.ID, repo, err)
	}
	d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	b.nodes[n] = d
	b.ds.Manifests = append(b.ds.Manifests, Item{Repo: repo, Desc: d, Data: data})
	b.ds.UniqueBytes += d.Size
	return d, nil
}

func (b *builder) image(i int, layerDesc []ocispec.Descriptor) error {
	img := b.p.Images[i]
	var layers []ocispec.Descriptor
	var diffIDs []digest.Digest
	for _, l := range img.Layers {
		layers = append(layers, layerIn(img, layerDesc[l]))
		// Registries never check diff_ids; the layer digest keeps them unique.
		diffIDs = append(diffIDs, layerDesc[l].Digest)
		b.addBlob(img.Repo, Item{Desc: layerDesc[l], Layer: &b.p.Layers[l]})
	}
	cfg := ocispec.Image{
		Platform: img.Platform,
		Config:   ocispec.ImageConfig{Labels: map[string]string{"dev.bundle.bench.image": fmt.Sprint(i)}},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
	}
	cfgData, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encoding config of image %d: %w", i, err)
	}
	cfgMT, mt := ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageManifest
	if img.Docker {
		cfgMT, mt = dockerConfig, graph.MediaTypeDockerManifest
	}
	cfgDesc := ocispec.Descriptor{MediaType: cfgMT, Digest: digest.FromBytes(cfgData), Size: int64(len(cfgData))}
	b.addBlob(img.Repo, Item{Desc: cfgDesc, Data: cfgData})
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: mt, Config: cfgDesc, Layers: layers}
	_, err = b.addManifest(img.Repo, Node{Kind: NodeImage, ID: i}, mt, m)
	return err
}

// layerIn is a layer's descriptor as img lists it: a base layer shared with
// OCI images goes into a Docker schema 2 manifest under Docker's media type
// for the same bytes, as docker itself would list it (skopeo refuses an OCI
// layer type in a schema 2 manifest).
func layerIn(img Image, d ocispec.Descriptor) ocispec.Descriptor {
	if !img.Docker {
		return d
	}
	switch d.MediaType {
	case ocispec.MediaTypeImageLayerGzip:
		d.MediaType = dockerLayerGzip
	case ocispec.MediaTypeImageLayer:
		d.MediaType = dockerLayer
	}
	return d
}

func (b *builder) index(i int) error {
	x := b.p.Indexes[i]
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	for _, img := range x.Images {
		d := b.nodes[Node{Kind: NodeImage, ID: img}]
		plat := b.p.Images[img].Platform
		d.Platform = &plat
		idx.Manifests = append(idx.Manifests, d)
	}
	_, err := b.addManifest(x.Repo, Node{Kind: NodeIndex, ID: i}, ocispec.MediaTypeImageIndex, idx)
	return err
}

// referrers writes each referrer after its subject (the plan orders them so)
// and then one fallback index per subject: the source registry has no
// referrers API, so the pusher keeps the tag schema, as cosign and oras do.
func (b *builder) referrers() error {
	empty := ocispec.DescriptorEmptyJSON
	bySubject := map[Node][]ocispec.Descriptor{}
	var subjects []Node
	for i, r := range b.p.Referrers {
		subject, ok := b.nodes[r.Subject]
		if !ok {
			return fmt.Errorf("referrer %d: its subject %v comes later in the plan", i, r.Subject)
		}
		subject.Platform = nil
		b.addBlob(r.Repo, Item{Desc: ocispec.Descriptor{MediaType: empty.MediaType, Digest: empty.Digest, Size: empty.Size}, Data: empty.Data})
		payload := referrerPayload(b.p.Seed+uint64(i), subject.Digest, r)
		pd := ocispec.Descriptor{MediaType: r.ArtifactType, Digest: digest.FromBytes(payload), Size: int64(len(payload))}
		b.addBlob(r.Repo, Item{Desc: pd, Data: payload})
		annotations := map[string]string{ocispec.AnnotationCreated: "2025-01-01T00:00:00Z"}
		m := ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
			ArtifactType: r.ArtifactType,
			Config:       ocispec.Descriptor{MediaType: empty.MediaType, Digest: empty.Digest, Size: empty.Size},
			Layers:       []ocispec.Descriptor{pd}, Subject: &subject, Annotations: annotations,
		}
		d, err := b.addManifest(r.Repo, Node{Kind: NodeReferrer, ID: i}, ocispec.MediaTypeImageManifest, m)
		if err != nil {
			return err
		}
		d.ArtifactType, d.Annotations = r.ArtifactType, annotations
		if bySubject[r.Subject] == nil {
			subjects = append(subjects, r.Subject)
		}
		bySubject[r.Subject] = append(bySubject[r.Subject], d)
	}
	for _, s := range subjects {
		idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: bySubject[s]}
		data, err := json.Marshal(idx)
		if err != nil {
			return fmt.Errorf("encoding the fallback index of %v: %w", s, err)
		}
		d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(data), Size: int64(len(data))}
		b.ds.Fallback = append(b.ds.Fallback, Item{Repo: b.p.RepoOf(s), Desc: d, Data: data, Tags: []string{graph.FallbackTag(b.nodes[s].Digest)}})
	}
	return nil
}

func (b *builder) tags() {
	pos := map[digest.Digest]int{}
	for i, m := range b.ds.Manifests {
		pos[m.Desc.Digest] = i
	}
	for _, t := range b.p.Tags {
		i := pos[b.nodes[t.Target].Digest]
		b.ds.Manifests[i].Tags = append(b.ds.Manifests[i].Tags, t.Tag)
		b.ds.Refs = append(b.ds.Refs, t.Repo+":"+t.Tag)
	}
}

// referrerPayload is a JSON document of exactly r.PayloadSize bytes (or just
// the header when that is larger) naming its subject, padded with text.
func referrerPayload(seed uint64, subject digest.Digest, r Referrer) []byte {
	head := fmt.Sprintf(`{"subject":%q,"artifactType":%q,"filler":"`, subject, r.ArtifactType)
	const tail = `"}`
	fill := max(r.PayloadSize-int64(len(head)+len(tail)), 0)
	var buf bytes.Buffer
	buf.Grow(len(head) + int(fill) + len(tail))
	buf.WriteString(head)
	// newTextReader never errors; the copy stops at fill bytes.
	_, _ = io.Copy(&buf, jsonSafe{newTextReader(seed, fill)})
	buf.WriteString(tail)
	return buf.Bytes()
}

// jsonSafe turns line breaks into spaces so the text sits in a JSON string.
type jsonSafe struct{ r io.Reader }

func (j jsonSafe) Read(p []byte) (int, error) {
	n, err := j.r.Read(p)
	for i := range p[:n] {
		if p[i] == '\n' {
			p[i] = ' '
		}
	}
	return n, err
}
