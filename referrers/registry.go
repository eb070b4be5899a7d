package referrers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
	"github.com/bundle-dev/bundle/internal/remote"
)

// maxReferrerPages bounds how many Link-paginated pages of a referrers
// listing are followed, so a looping registry cannot keep us forever.
const maxReferrerPages = 100

// manifestAccept is what a manifest GET accepts: every type bundle carries.
var manifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
	graph.MediaTypeDockerManifest, graph.MediaTypeDockerManifestList,
	graph.MediaTypeArtifactManifest,
}, ", ")

// client makes the raw registry calls containerd's resolver has no method
// for (probe the referrers API, put a manifest under a tag of our choosing),
// through remote.Do so that hosts.toml, auth and retries still apply.
type client struct {
	send func(ctx context.Context, req *http.Request) (*http.Response, error)
}

func (p *Publisher) client() *client { return newClient(p.Hosts) }

func newClient(hosts docker.RegistryHosts) *client {
	return &client{send: func(ctx context.Context, req *http.Request) (*http.Response, error) {
		return remote.Do(ctx, hosts, req)
	}}
}

// request builds a request for /v2/<name>/<kind>/<ref> of repo.
func request(ctx context.Context, method, repo, kind, ref string, body []byte) (*http.Request, error) {
	host, name, _ := strings.Cut(repo, "/")
	u := &url.URL{Scheme: "https", Host: host, Path: "/v2/" + name + "/" + kind + "/" + ref}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	if body != nil {
		// Lets the request be replayed after an auth challenge or a retry.
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	return req, nil
}

func (c *client) do(req *http.Request) (*http.Response, error) {
	resp, err := c.send(req.Context(), req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	return resp, nil
}

// referrers lists subject's referrers through the API, following Link
// pagination. found=false means the registry has no referrers API.
func (c *client) referrers(ctx context.Context, repo string, subject digest.Digest) ([]ocispec.Descriptor, bool, error) {
	req, err := request(ctx, http.MethodGet, repo, "referrers", subject.String(), nil)
	if err != nil {
		return nil, false, err
	}
	var out []ocispec.Descriptor
	for page := 0; ; page++ {
		if page == maxReferrerPages {
			return nil, false, fmt.Errorf("referrers of %s in %s: more than %d pages; the registry's Link headers loop", subject, repo, maxReferrerPages)
		}
		req.Header.Set("Accept", ocispec.MediaTypeImageIndex)
		resp, err := c.do(req)
		if err != nil {
			return nil, false, err
		}
		idx, next, found, err := readReferrersPage(resp)
		if err != nil || !found {
			return nil, found, err
		}
		out = append(out, idx.Manifests...)
		if next == "" {
			return out, true, nil
		}
		if req, err = nextPage(req, next); err != nil {
			return nil, false, fmt.Errorf("referrers of %s in %s: %w", subject, repo, err)
		}
	}
}

// readReferrersPage reads one referrers response. 404 and 405 mean no API;
// a 200 that is not an index (a catch-all front page) means no API either.
func readReferrersPage(resp *http.Response) (*ocispec.Index, string, bool, error) {
	defer drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return nil, "", false, nil
	default:
		return nil, "", false, statusError(resp)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != ocispec.MediaTypeImageIndex && mt != "application/json" {
		return nil, "", false, nil
	}
	data, err := graph.ReadAll(resp.Body)
	if err != nil {
		return nil, "", false, fmt.Errorf("reading a referrers listing: %w", err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(data, &idx); err != nil || idx.SchemaVersion != 2 {
		return nil, "", false, nil
	}
	return &idx, nextLink(resp.Header.Get("Link")), true, nil
}

// nextPage is the request for the page a Link header's next names,
// relative to req. Credentials must not follow a link to another host.
func nextPage(req *http.Request, next string) (*http.Request, error) {
	u, err := req.URL.Parse(next)
	if err != nil {
		return nil, fmt.Errorf("bad Link header %q: %w", next, err)
	}
	if u.Host != req.URL.Host {
		return nil, fmt.Errorf("the registry paginates to another host (%s); refusing", u.Host)
	}
	return http.NewRequestWithContext(req.Context(), http.MethodGet, u.String(), nil)
}

// nextLink extracts the target of rel="next" from a Link header.
func nextLink(h string) string {
	for part := range strings.SplitSeq(h, ",") {
		target, params, ok := strings.Cut(part, ";")
		if !ok || !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
			continue
		}
		target = strings.TrimSpace(target)
		return strings.TrimSuffix(strings.TrimPrefix(target, "<"), ">")
	}
	return ""
}

// getManifest reads manifest ref (tag or digest) of repo, bounded. A
// missing manifest wraps errNotFound.
func (c *client) getManifest(ctx context.Context, repo, ref, mediaType string) ([]byte, string, error) {
	req, err := request(ctx, http.MethodGet, repo, "manifests", ref, nil)
	if err != nil {
		return nil, "", err
	}
	accept := manifestAccept
	if mediaType != "" && !strings.Contains(accept, mediaType) {
		accept = mediaType + ", " + accept
	}
	req.Header.Set("Accept", accept)
	resp, err := c.do(req)
	if err != nil {
		return nil, "", err
	}
	defer drain(resp)
	if resp.StatusCode == http.StatusNotFound {
		return nil, "", fmt.Errorf("manifest %s of %s: %w", ref, repo, errNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", statusError(resp)
	}
	data, err := graph.ReadAll(resp.Body)
	if err != nil {
		return nil, "", fmt.Errorf("reading manifest %s of %s: %w", ref, repo, err)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return data, mt, nil
}

// headManifest returns the digest tag or digest ref resolves to in repo,
// "" when it does not exist.
func (c *client) headManifest(ctx context.Context, repo, ref string) (digest.Digest, error) {
	req, err := request(ctx, http.MethodHead, repo, "manifests", ref, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := c.do(req)
	if err != nil {
		return "", err
	}
	defer drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
		return digest.Digest(resp.Header.Get("Docker-Content-Digest")), nil
	case http.StatusNotFound:
		return "", nil
	}
	return "", statusError(resp)
}

// fallbackIndex reads the fallback tag index; nil when the tag is absent.
func (c *client) fallbackIndex(ctx context.Context, repo, tag string) (*ocispec.Index, error) {
	data, mt, err := c.getManifest(ctx, repo, tag, ocispec.MediaTypeImageIndex)
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading fallback index %s:%s: %w", repo, tag, err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("reading fallback index %s:%s: %w; delete the tag if it is not a referrers index", repo, tag, err)
	}
	if mt == "" {
		mt = idx.MediaType
	}
	if mt != ocispec.MediaTypeImageIndex {
		return nil, fmt.Errorf("fallback tag %s:%s holds a %q, not an OCI index; it is reserved for referrers: delete it and retry", repo, tag, mt)
	}
	return &idx, nil
}

// putManifest stores data as manifest ref (a tag) of repo.
func (c *client) putManifest(ctx context.Context, repo, ref, mediaType string, data []byte) error {
	req, err := request(ctx, http.MethodPut, repo, "manifests", ref, data)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mediaType)
	req.ContentLength = int64(len(data))
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode/100 != 2 {
		return statusError(resp)
	}
	return nil
}

// statusError names the request and quotes the start of the registry's error body.
func statusError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	what := "registry request"
	if resp.Request != nil {
		what = resp.Request.Method + " " + resp.Request.URL.Redacted()
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%s: %s: check the credentials in the docker config (docker login)", what, resp.Status)
	case resp.StatusCode >= 500:
		return fmt.Errorf("%s: %s %s: the registry failed; retry later", what, resp.Status, bytes.TrimSpace(body))
	}
	return fmt.Errorf("%s: %s %s", what, resp.Status, bytes.TrimSpace(body))
}

// drain lets the connection be reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

func isNotFound(err error) bool { return err != nil && errors.Is(err, errNotFound) }

// maxTagPages bounds the Link-paginated pages of a tag listing.
const maxTagPages = 1000

// tagPageSize is the page size asked for. A registry that answers a full
// page without a Link to the next may have cut the list short: such a
// listing is not trusted, since a tag missed there would be a signature
// silently left behind.
const tagPageSize = 1000

var errTruncated = errors.New("the registry may have cut the tag list short")

// tags lists repo's tags, n per page, following Link pagination, keeping
// those keep accepts. Any answer but 200 is an error: the caller then asks
// for each tag it wants instead.
func (c *client) tags(ctx context.Context, repo string, n int, keep func(string) bool) ([]string, error) {
	req, err := request(ctx, http.MethodGet, repo, "tags", "list", nil)
	if err != nil {
		return nil, err
	}
	req.URL.RawQuery = url.Values{"n": {strconv.Itoa(n)}}.Encode()
	var out []string
	for page := 0; ; page++ {
		if page == maxTagPages {
			return nil, fmt.Errorf("tags of %s: more than %d pages; the registry's Link headers loop", repo, maxTagPages)
		}
		list, next, err := c.tagPage(req, repo)
		if err != nil {
			return nil, err
		}
		for _, t := range list {
			if keep(t) {
				out = append(out, t)
			}
		}
		if next == "" {
			if len(list) == n {
				return nil, fmt.Errorf("tags of %s: %w", repo, errTruncated)
			}
			return out, nil
		}
		if req, err = nextPage(req, next); err != nil {
			return nil, fmt.Errorf("tags of %s: %w", repo, err)
		}
	}
}

// tagPage reads one page of a tag listing and the Link to the next.
func (c *client) tagPage(req *http.Request, repo string) ([]string, string, error) {
	resp, err := c.do(req)
	if err != nil {
		return nil, "", err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return nil, "", statusError(resp)
	}
	data, err := graph.ReadAll(resp.Body)
	if err != nil {
		return nil, "", fmt.Errorf("reading the tags of %s: %w", repo, err)
	}
	var list struct {
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, "", fmt.Errorf("reading the tags of %s: %w", repo, err)
	}
	return list.Tags, nextLink(resp.Header.Get("Link")), nil
}
