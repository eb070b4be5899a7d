package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
)

// The peer issue 16 measures import against: a loop of
// `regctl image copy --referrers --digest-tags SRC DST`, one regctl process
// per image, one after the other, registry to registry. It does export and
// import at once, so the table sets it beside both.

// RegctlLoop is the regctl copy loop over one scale run's images.
type RegctlLoop struct {
	Sample         // summed over the processes; MaxRSS is the highest
	SourceRequests int64
	TargetRequests int64
	Tags           int    // image tags found on its target afterwards
	Referrers      string // what following the fallback tags on its target found
	Skipped        string // why it was not run
	Err            string // it failed; bundle's figures of the run still stand
}

// Ran says the loop ran to the end.
// regctlMaxImages is the largest N the regctl loop runs at.
const regctlMaxImages = 1000

func (l RegctlLoop) Ran() bool { return l.Skipped == "" && l.Err == "" }

// runRegctl copies every image of refs ("HOST/repo:tag") from src to a
// fresh registry under mirror/ with cfg.Regctl, counting the requests on
// both sides: srcProxy, in front of src, counts into srcCount, shared with
// earlier steps.
func runRegctl(ctx context.Context, cfg Config, dir string, refs []string, src *Registry, srcProxy *httptest.Server, srcCount *atomic.Int64) (loop RegctlLoop) {
	if cfg.Regctl == "" {
		loop.Skipped = "no regctl binary given (-regctl)"
		return loop
	}
	if _, err := os.Stat(cfg.Regctl); err != nil {
		loop.Skipped = err.Error()
		return loop
	}
	if len(refs) > regctlMaxImages {
		// The loop costs about 85 ms an image here: 10,000 would take a
		// quarter of an hour, for a comparison the issue sets at 1,000.
		loop.Skipped = fmt.Sprintf("above %d images (one process per image would take %s or more)", regctlMaxImages, time.Duration(len(refs))*80*time.Millisecond)
		return loop
	}
	fail := func(err error) RegctlLoop {
		loop.Err = err.Error()
		return loop
	}
	dst, err := StartRegistry(ctx, cfg.Registry, filepath.Join(dir, "target-regctl"))
	if err != nil {
		return fail(err)
	}
	defer dst.RemoveAll()
	dstProxy, dstCount := countingProxy(dst.Host)
	defer dstProxy.Close()

	// A private configuration: both registries speak plain HTTP, and no
	// regctl or docker setting of the machine (a credential helper above
	// all) takes part in the timing.
	home := filepath.Join(dir, "regctl")
	if err := os.MkdirAll(home, 0o755); err != nil {
		return fail(err)
	}
	env := []string{"REGCTL_CONFIG=" + filepath.Join(home, "config.json"), "DOCKER_CONFIG=" + home}
	for _, host := range []string{hostOf(srcProxy), hostOf(dstProxy)} {
		if _, err := RunChildEnv(ctx, dir, env, cfg.Regctl, "registry", "set", "--tls", "disabled", host); err != nil {
			return fail(fmt.Errorf("configuring regctl: %w", err))
		}
	}

	logf(cfg.Log, "scale %d: regctl image copy --referrers --digest-tags, one process per image", len(refs))
	srcBefore, dstBefore := srcCount.Load(), dstCount.Load()
	for _, ref := range refs {
		from := strings.Replace(ref, "HOST", hostOf(srcProxy), 1)
		to := strings.Replace(ref, "HOST", hostOf(dstProxy)+"/mirror", 1)
		s, err := RunChildEnv(ctx, dir, env, cfg.Regctl, "image", "copy", "--referrers", "--digest-tags", from, to)
		loop.Sample.add(s)
		if err != nil {
			return fail(err)
		}
	}
	loop.SourceRequests, loop.TargetRequests = srcCount.Load()-srcBefore, dstCount.Load()-dstBefore

	// The same independent look as after bundle's import, then one image's
	// referrers followed by fallback tag on both registries.
	c := NewClient(dst.Host)
	if loop.Tags, err = checkTags(ctx, c, len(refs), "mirror/"); err != nil {
		return fail(fmt.Errorf("after the regctl loop %w", err))
	}
	loop.Referrers = compareFallback(ctx, NewClient(src.Host), c, "team0/app", "mirror/team0/app", "v0")
	return loop
}

// compareFallback follows one image's referrers by fallback tag on the
// source (the image's tag lists its SBOM, the SBOM's its signature) and
// says, in words for the report, whether the target has the same.
func compareFallback(ctx context.Context, src, dst *Client, srcRepo, dstRepo, tag string) string {
	subject, err := src.resolve(ctx, srcRepo, tag)
	if err != nil {
		return "not checked: " + err.Error()
	}
	var carried []string
	said := func(s string) string { return strings.Join(append(carried, s), "; ") }
	for _, what := range []string{"SBOM", "signature"} {
		fbTag := graph.FallbackTag(subject)
		want, err := src.fallbackList(ctx, srcRepo, subject)
		if err != nil || len(want) != 1 {
			return said(fmt.Sprintf("not checked: the source's %s has %d entries (%v)", fbTag, len(want), err))
		}
		got, err := dst.fallbackList(ctx, dstRepo, subject)
		if err != nil {
			_, byDigest := dst.resolve(ctx, dstRepo, want[0].Digest.String())
			return said(fmt.Sprintf("no fallback tag %s on the target (%v); the %s manifest by digest: %s", fbTag, err, what, presence(byDigest)))
		}
		if len(got) != 1 || got[0].Digest != want[0].Digest {
			return said(fmt.Sprintf("the target's %s lists %d entries, not the %s alone", fbTag, len(got), what))
		}
		carried = append(carried, fmt.Sprintf("%s… lists the %s", fbTag[:19], what))
		subject = want[0].Digest
	}
	return "fallback tags as on the source: " + strings.Join(carried, ", ")
}

func presence(err error) string {
	if err == nil {
		return "there"
	}
	return err.Error()
}

// resolve HEADs repo:ref and returns the digest the registry gives it.
func (c *Client) resolve(ctx context.Context, repo, ref string) (digest.Digest, error) {
	h := http.Header{"Accept": {ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex}}
	resp, err := c.do(ctx, http.MethodHead, c.Base+"/v2/"+repo+"/manifests/"+ref, h, nil, 0)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s:%s answers %s", repo, ref, resp.Status)
	}
	return digest.Parse(resp.Header.Get("Docker-Content-Digest"))
}

// fallbackList reads the referrers index at subject's fallback tag.
func (c *Client) fallbackList(ctx context.Context, repo string, subject digest.Digest) ([]ocispec.Descriptor, error) {
	tag := graph.FallbackTag(subject)
	h := http.Header{"Accept": {ocispec.MediaTypeImageIndex}}
	resp, err := c.do(ctx, http.MethodGet, c.Base+"/v2/"+repo+"/manifests/"+tag, h, nil, 0)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, expect(resp, repo+":"+tag, http.StatusOK)
	}
	var idx ocispec.Index
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&idx); err != nil {
		return nil, fmt.Errorf("%s:%s: %w", repo, tag, err)
	}
	return idx.Manifests, nil
}
