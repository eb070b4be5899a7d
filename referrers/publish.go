package referrers

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/remotes"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/internal/remote"
)

// Mode says how a target registry learns about referrers.
type Mode string

const (
	ModeAuto Mode = "auto" // the API when the registry has it, else the fallback tag
	ModeAPI  Mode = "api"  // the registry's referrers API; nothing to write
	ModeTag  Mode = "tag"  // the fallback tag <alg>-<hex> index, maintained by us
)

// ParseMode reads a --referrers-mode value; "" means auto.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case "":
		return ModeAuto, nil
	case ModeAuto, ModeAPI, ModeTag:
		return m, nil
	}
	return "", fmt.Errorf("referrers mode %q: want auto, api or tag", s)
}

// How often Publish retries: the fallback index against concurrent
// writers, the API listing against registries that index asynchronously.
const (
	mergeAttempts   = 5
	confirmAttempts = 4
	confirmBackoff  = 100 * time.Millisecond
)

// Publisher makes a target registry list the referrers import pushed.
// Manifests are read through Resolver (or Client when it is nil); the
// referrers API probe and tag writes go through Client. It caches the API
// probe per host, so use one Publisher per import and do not copy it after
// first use.
type Publisher struct {
	Resolver remotes.Resolver
	Client   *remote.Client
	Mode     Mode // "" means ModeAuto

	mu  sync.Mutex
	api map[string]bool // host -> has the referrers API
}

// HasAPI reports whether repo's registry serves the referrers API: a probe
// GET /v2/<name>/referrers/<digest> answering 200 with an index says yes,
// 404 or 405 says no. The answer is cached per host.
func (p *Publisher) HasAPI(ctx context.Context, repo string) (bool, error) {
	if err := checkRepo(repo); err != nil {
		return false, err
	}
	host, _, _ := strings.Cut(repo, "/")
	p.mu.Lock()
	has, ok := p.api[host]
	p.mu.Unlock()
	if ok {
		return has, nil
	}
	// Any well-formed digest will do: a registry with the API answers 200
	// and an empty index even for a subject it does not hold.
	probe := digest.FromString("bundle referrers API probe")
	_, found, err := p.Client.Referrers(ctx, repo, probe)
	if err != nil {
		return false, fmt.Errorf("probing the referrers API of %s: %w", host, err)
	}
	p.mu.Lock()
	if p.api == nil {
		p.api = map[string]bool{}
	}
	p.api[host] = found
	p.mu.Unlock()
	return found, nil
}

// Publish makes repo list refs as referrers of subject. Call it after the
// referrer manifests are pushed into repo. It returns the mode it used.
// With the API there is nothing to write, but the listing is checked; with
// the fallback tag, the <alg>-<hex> index is read, merged (foreign entries
// kept, nothing twice), written only if changed and read back to confirm.
func (p *Publisher) Publish(ctx context.Context, repo string, subject ocispec.Descriptor, refs []ocispec.Descriptor) (Mode, error) {
	if err := checkRepo(repo); err != nil {
		return "", err
	}
	if err := subject.Digest.Validate(); err != nil {
		return "", fmt.Errorf("publishing referrers in %s: subject digest %q: %w", repo, subject.Digest, err)
	}
	mode, err := p.mode(ctx, repo)
	if err != nil {
		return "", err
	}
	if len(refs) == 0 {
		return mode, nil
	}
	refs, err = p.entries(ctx, repo, refs)
	if err != nil {
		return "", err
	}
	if mode == ModeAPI {
		return mode, p.confirmAPI(ctx, repo, subject.Digest, refs)
	}
	return mode, p.mergeFallback(ctx, repo, subject.Digest, refs)
}

func (p *Publisher) mode(ctx context.Context, repo string) (Mode, error) {
	switch p.Mode {
	case ModeAPI, ModeTag:
		return p.Mode, nil
	case "", ModeAuto:
		has, err := p.HasAPI(ctx, repo)
		if err != nil {
			return "", err
		}
		if has {
			return ModeAPI, nil
		}
		return ModeTag, nil
	}
	return "", fmt.Errorf("referrers mode %q: want auto, api or tag", p.Mode)
}

// entries turns refs into what the referrers tag schema wants of each:
// mediaType, digest, size, artifactType and annotations, nothing else.
// A descriptor without artifactType is completed from its manifest in repo,
// which must already be pushed.
func (p *Publisher) entries(ctx context.Context, repo string, refs []ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	out := make([]ocispec.Descriptor, 0, len(refs))
	seen := map[digest.Digest]bool{}
	for _, r := range refs {
		if err := r.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("referrer %q for %s: %w", r.Digest, repo, err)
		}
		if seen[r.Digest] {
			continue
		}
		seen[r.Digest] = true
		if r.ArtifactType == "" || r.MediaType == "" {
			data, mt, err := p.readManifest(ctx, repo, r)
			if err != nil {
				return nil, fmt.Errorf("reading referrer %s in %s to learn its artifact type: %w; push the referrer before publishing it", r.Digest, repo, err)
			}
			m, err := graph.Parse(mt, data)
			if err != nil {
				return nil, fmt.Errorf("referrer %s in %s: %w", r.Digest, repo, err)
			}
			r.MediaType, r.Size, r.ArtifactType = m.MediaType, int64(len(data)), m.ArtifactTypeOf()
			if len(r.Annotations) == 0 {
				r.Annotations = m.Annotations
			}
		}
		out = append(out, ocispec.Descriptor{
			MediaType:    r.MediaType,
			Digest:       r.Digest,
			Size:         r.Size,
			ArtifactType: r.ArtifactType,
			Annotations:  r.Annotations,
		})
	}
	return out, nil
}

// confirmAPI checks the registry lists every ref. Some registries index
// referrers asynchronously, so a few short waits are allowed. This is no
// retry of failures (those the one policy retries, request by request): a
// failed listing ends it at once.
func (p *Publisher) confirmAPI(ctx context.Context, repo string, subject digest.Digest, refs []ocispec.Descriptor) error {
	var missing []string
	for attempt := range confirmAttempts {
		if attempt > 0 {
			if err := remote.Sleep(ctx, confirmBackoff<<(attempt-1)); err != nil {
				return err
			}
		}
		listed, found, err := p.Client.Referrers(ctx, repo, subject)
		if err != nil {
			return fmt.Errorf("confirming referrers of %s in %s: %w", subject, repo, err)
		}
		if !found {
			return fmt.Errorf("confirming referrers of %s in %s: the registry has no referrers API (404); import with --referrers-mode tag or auto", subject, repo)
		}
		missing = missingFrom(listed, refs)
		if len(missing) == 0 {
			return nil
		}
	}
	return fmt.Errorf("the referrers API of %s does not list %s as referrers of %s although they were pushed; the registry may ignore the subject field: import with --referrers-mode tag", repo, strings.Join(missing, ", "), subject)
}

// missingFrom lists the digests of want that have are missing.
func missingFrom(have, want []ocispec.Descriptor) []string {
	in := map[digest.Digest]bool{}
	for _, d := range have {
		in[d.Digest] = true
	}
	var out []string
	for _, d := range want {
		if !in[d.Digest] {
			out = append(out, d.Digest.String())
		}
	}
	return out
}

// mergeFallback maintains the fallback tag index: read, merge, write if
// changed, read back. Another writer may change the tag between our read
// and write; the read-back catches that and the merge is redone. That is
// the only loop here: a request that fails is retried by the one policy,
// and one that fails for good ends the merge.
func (p *Publisher) mergeFallback(ctx context.Context, repo string, subject digest.Digest, refs []ocispec.Descriptor) error {
	tag := graph.FallbackTag(subject)
	c := p.Client
	for range mergeAttempts {
		current, err := readFallbackIndex(ctx, c, repo, tag)
		if err != nil {
			return err
		}
		merged, changed := mergeIndex(current, refs)
		if !changed {
			return nil
		}
		data, err := json.Marshal(merged)
		if err != nil {
			return fmt.Errorf("encoding fallback index %s:%s: %w", repo, tag, err)
		}
		if err := c.PutManifest(ctx, repo, tag, ocispec.MediaTypeImageIndex, data); err != nil {
			return fmt.Errorf("writing fallback index %s:%s: %w", repo, tag, err)
		}
		after, err := readFallbackIndex(ctx, c, repo, tag)
		if err != nil {
			return err
		}
		if _, changed := mergeIndex(after, refs); !changed {
			return nil
		}
	}
	return fmt.Errorf("fallback index %s:%s kept changing under concurrent writers (%d attempts); rerun the import", repo, tag, mergeAttempts)
}

// mergeIndex adds refs to the fallback index current (nil for none). Entries
// of other referrers are kept as they are; an entry for one of refs is
// replaced when it differs, so the index ends with each digest once.
// changed=false means current already says all refs say.
func mergeIndex(current *ocispec.Index, refs []ocispec.Descriptor) (*ocispec.Index, bool) {
	out := &ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{},
	}
	changed := current == nil
	if current != nil {
		out.Annotations = current.Annotations
		if current.SchemaVersion != 2 || current.MediaType != ocispec.MediaTypeImageIndex {
			changed = true
		}
	}
	want := map[digest.Digest]ocispec.Descriptor{}
	for _, r := range refs {
		want[r.Digest] = r
	}
	done := map[digest.Digest]bool{}
	if current != nil {
		for _, d := range current.Manifests {
			if done[d.Digest] {
				changed = true // a duplicate entry: drop it
				continue
			}
			done[d.Digest] = true
			if w, ok := want[d.Digest]; ok && !sameEntry(d, w) {
				d, changed = w, true
			}
			out.Manifests = append(out.Manifests, d)
		}
	}
	for _, r := range refs {
		if !done[r.Digest] {
			done[r.Digest] = true
			out.Manifests = append(out.Manifests, r)
			changed = true
		}
	}
	return out, changed
}

func sameEntry(a, b ocispec.Descriptor) bool {
	return a.MediaType == b.MediaType && a.Digest == b.Digest && a.Size == b.Size &&
		a.ArtifactType == b.ArtifactType && maps.Equal(a.Annotations, b.Annotations)
}

var tagPattern = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

// Tag points tag in repo at desc, an already-pushed manifest (cosign tags
// .sig, .att and .sbom travel this way). A tag already there is left alone.
func (p *Publisher) Tag(ctx context.Context, repo, tag string, desc ocispec.Descriptor) error {
	if err := checkRepo(repo); err != nil {
		return err
	}
	if !tagPattern.MatchString(tag) {
		return fmt.Errorf("tag %q for %s: not a valid tag", tag, repo)
	}
	if err := desc.Digest.Validate(); err != nil {
		return fmt.Errorf("tagging %s:%s: digest %q: %w", repo, tag, desc.Digest, err)
	}
	c := p.Client
	current, err := c.ManifestDigest(ctx, repo, tag, manifestAccept)
	if err != nil {
		return fmt.Errorf("tagging %s:%s: %w", repo, tag, err)
	}
	if current == desc.Digest {
		return nil
	}
	// The registry API has no "add a tag": the manifest is put again under it.
	data, mt, err := p.readManifest(ctx, repo, desc)
	if err != nil {
		return fmt.Errorf("tagging %s:%s: reading %s: %w; push the manifest first", repo, tag, desc.Digest, err)
	}
	if err := c.PutManifest(ctx, repo, tag, mt, data); err != nil {
		return fmt.Errorf("tagging %s:%s with %s: %w", repo, tag, desc.Digest, err)
	}
	return nil
}

// readManifest reads the manifest desc names from repo, bounded and
// verified, through the resolver (mirrors, retries) when there is one. It
// returns the bytes and their media type: desc's, else what the registry
// or the document says.
func (p *Publisher) readManifest(ctx context.Context, repo string, desc ocispec.Descriptor) ([]byte, string, error) {
	if p.Resolver == nil {
		data, mt, err := getManifest(ctx, p.Client, repo, desc.Digest.String(), desc.MediaType)
		if err != nil {
			return nil, "", err
		}
		if desc.MediaType != "" {
			mt = desc.MediaType
		}
		return data, mt, verify(desc, data)
	}
	mt := desc.MediaType
	if mt == "" {
		// containerd picks the manifests endpoint by media type.
		desc.MediaType = ocispec.MediaTypeImageManifest
	}
	fetcher, err := p.Resolver.Fetcher(ctx, repo+"@"+desc.Digest.String())
	if err != nil {
		return nil, "", err
	}
	data, err := fetchManifest(ctx, fetcher, desc)
	if err != nil {
		return nil, "", err
	}
	if mt == "" {
		var doc struct {
			MediaType string `json:"mediaType"`
		}
		_ = json.Unmarshal(data, &doc) // a bad document fails in graph.Parse later
		mt = doc.MediaType
	}
	return data, mt, nil
}
