package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bundle-dev/bundle/internal/graph"
)

// Bounds on Link pagination, so that a looping registry cannot keep us.
const (
	maxTagPages      = 1000
	maxReferrerPages = 100
)

// ErrTagsTruncated says a registry answered a full page of tags without a
// Link to the next: it may have cut the list short.
var ErrTagsTruncated = errors.New("the registry may have cut the tag list short")

// Tags lists repo's tags, n per page, following Link pagination, keeping
// those keep accepts. A full page without a Link is ErrTagsTruncated: a
// tag missed there would be a signature silently left behind.
func (c *Client) Tags(ctx context.Context, repo string, n int, keep func(string) bool) ([]string, error) {
	req, err := c.newRequest(ctx, http.MethodGet, repo, "tags/list?"+url.Values{"n": {strconv.Itoa(n)}}.Encode(), nil)
	if err != nil {
		return nil, err
	}
	var out []string
	for page := 0; ; page++ {
		if page == maxTagPages {
			return nil, fmt.Errorf("tags of %s: more than %d pages; the registry's Link headers loop", repo, maxTagPages)
		}
		var list struct {
			Tags []string `json:"tags"`
		}
		next, _, err := c.page(req, &list)
		if err != nil {
			return nil, fmt.Errorf("tags of %s: %w", repo, err)
		}
		for _, t := range list.Tags {
			if keep(t) {
				out = append(out, t)
			}
		}
		if next == nil {
			if len(list.Tags) == n {
				return nil, fmt.Errorf("tags of %s: %w", repo, ErrTagsTruncated)
			}
			return out, nil
		}
		req = next
	}
}

// Referrers lists subject's referrers in repo through the referrers API,
// following Link pagination. found=false means the registry has no
// referrers API: it answered 404 or 405, or a 200 that is no index (a
// catch-all front page).
func (c *Client) Referrers(ctx context.Context, repo string, subject digest.Digest) ([]ocispec.Descriptor, bool, error) {
	req, err := c.newRequest(ctx, http.MethodGet, repo, "referrers/"+subject.String(), nil)
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("Accept", ocispec.MediaTypeImageIndex)
	var out []ocispec.Descriptor
	for page := 0; ; page++ {
		if page == maxReferrerPages {
			return nil, false, fmt.Errorf("referrers of %s in %s: more than %d pages; the registry's Link headers loop", subject, repo, maxReferrerPages)
		}
		var idx ocispec.Index
		next, mt, err := c.page(req, &idx)
		var se *StatusError
		switch {
		case errors.As(err, &se) && (se.StatusCode == http.StatusNotFound || se.StatusCode == http.StatusMethodNotAllowed),
			errors.Is(err, errNotAList):
			return nil, false, nil
		case err != nil:
			return nil, false, fmt.Errorf("referrers of %s in %s: %w", subject, repo, err)
		case mt != ocispec.MediaTypeImageIndex && mt != "application/json", idx.SchemaVersion != 2:
			return nil, false, nil
		}
		out = append(out, idx.Manifests...)
		if next == nil {
			return out, true, nil
		}
		req = next
	}
}

// errNotAList is a 200 whose body is no JSON list: not the API asked for.
var errNotAList = errors.New("the answer is not a JSON list")

// page reads one page of a list into v and returns the request for the
// next (nil at the end) and the page's media type. A status other than 200
// is a *StatusError.
func (c *Client) page(req *http.Request, v any) (*http.Request, string, error) {
	resp, err := c.send(req.Context(), req)
	if err != nil {
		return nil, "", err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return nil, "", newStatusError(resp)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	data, err := graph.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return nil, "", fmt.Errorf("%w: %w", errNotAList, err)
	}
	link := nextLink(resp.Header.Get("Link"))
	if link == "" {
		return nil, mt, nil
	}
	next, err := nextPage(req, link)
	return next, mt, err
}

// nextPage is the request for the page a Link header's next names,
// relative to req. A link to another host is refused: the credentials of
// this registry must not follow it.
func nextPage(req *http.Request, next string) (*http.Request, error) {
	u, err := req.URL.Parse(next)
	if err != nil {
		return nil, fmt.Errorf("bad Link header %q: %w", next, err)
	}
	if u.Host != req.URL.Host {
		return nil, fmt.Errorf("the registry paginates to another host (%s); refusing", u.Host)
	}
	out, err := http.NewRequestWithContext(req.Context(), http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	out.Header = req.Header.Clone()
	return out, nil
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
