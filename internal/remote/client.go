package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/containerd/containerd/v2/core/remotes/docker"
)

// Client makes the registry API calls containerd's resolver does not make,
// or hides the answers of: blob HEAD and upload (POST, PUT, mount),
// manifests by tag, tag listing and the referrers API, both paginated. It
// is the one hand-written registry HTTP client of bundle. Its requests go
// through the configured hosts (hosts.toml, TLS, credentials) and the one
// transport, so they retry exactly like containerd's.
//
// Repositories are named "host/path", as in references.
type Client struct {
	hosts     docker.RegistryHosts
	policy    Policy
	userAgent string
}

// NewClient is a Client over hosts (from Options.Hosts) retrying under p,
// which must be the policy hosts' transport was configured with: the
// upload's own loop (a fresh POST after a failed PUT) uses it.
func NewClient(hosts docker.RegistryHosts, p Policy, userAgent string) *Client {
	return &Client{hosts: hosts, policy: p, userAgent: userAgent}
}

// newRequest builds a request for /v2/<name>/<rest> of repo. rest may
// carry a query.
func (c *Client) newRequest(ctx context.Context, method, repo, rest string, body []byte) (*http.Request, error) {
	host, name, ok := strings.Cut(repo, "/")
	if !ok || host == "" || name == "" {
		return nil, fmt.Errorf("repository %q: want host/path", repo)
	}
	u, err := url.Parse("https://" + host + "/v2/" + name + "/" + rest)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, repo, err)
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u.Path, err)
	}
	if body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	return req, nil
}

// send sends req (whose URL.Host is a registry name, such as "docker.io"
// or "127.0.0.1:5000") through the first configured host able to serve it,
// with that host's scheme, TLS, headers and authorization. On 401 it lets
// the authorizer read the challenge and sends a replayable request once
// more. Its errors never carry the request's query.
func (c *Client) send(ctx context.Context, req *http.Request) (*http.Response, error) {
	name := req.URL.Host
	list, err := c.hosts(name)
	if err != nil {
		return nil, fmt.Errorf("configuring registry %s: %w", name, err)
	}
	host, ok := pickHost(list, needs(req))
	if !ok {
		return nil, fmt.Errorf("registry %s: no configured host can serve %s %s: check the hosts.toml capabilities under --hosts-dir", name, req.Method, req.URL.Path)
	}
	ctx = withRepositoryScope(ctx, req)
	resp, err := c.sendTo(ctx, host, req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || host.Authorizer == nil || !replayable(req) {
		return resp, err
	}
	if err := host.Authorizer.AddResponses(ctx, []*http.Response{resp}); err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("authorizing %s %s on %s: %w", req.Method, req.URL.Path, name, err)
	}
	resp.Body.Close()
	return c.sendTo(ctx, host, req)
}

// needs is the capability a request calls for.
func needs(req *http.Request) docker.HostCapabilities {
	switch {
	case strings.Contains(req.URL.Path, "/referrers/"):
		return docker.HostCapabilityReferrers
	case req.Method != http.MethodGet && req.Method != http.MethodHead:
		return docker.HostCapabilityPush
	case strings.Contains(req.URL.Path, "/manifests/"):
		return docker.HostCapabilityResolve
	}
	return docker.HostCapabilityPull
}

func pickHost(hosts []docker.RegistryHost, c docker.HostCapabilities) (docker.RegistryHost, bool) {
	for _, h := range hosts {
		if h.Capabilities.Has(c) {
			return h, true
		}
	}
	return docker.RegistryHost{}, false
}

// withRepositoryScope asks a token server for the repository the request
// names, as the resolver does for its own requests.
func withRepositoryScope(ctx context.Context, req *http.Request) context.Context {
	rest, ok := strings.CutPrefix(req.URL.Path, "/v2/")
	if !ok {
		return ctx
	}
	for _, kind := range []string{"/manifests/", "/blobs/", "/referrers/", "/tags/"} {
		if i := strings.Index(rest, kind); i > 0 {
			actions := "pull"
			if req.Method != http.MethodGet && req.Method != http.MethodHead {
				actions = "pull,push"
			}
			return docker.WithScope(ctx, "repository:"+rest[:i]+":"+actions)
		}
	}
	return ctx
}

// sendTo sends a copy of req rewritten for host. The copy gets a fresh
// body when req can give one (the 401 replay).
func (c *Client) sendTo(ctx context.Context, host docker.RegistryHost, req *http.Request) (*http.Response, error) {
	out := req.Clone(ctx)
	if req.Body != nil && req.Body != http.NoBody && req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		out.Body = body
	}
	out.URL.Scheme = host.Scheme
	out.URL.Host = host.Host
	out.Host = ""
	if host.Path != "" && host.Path != "/v2" {
		out.URL.Path = host.Path + strings.TrimPrefix(req.URL.Path, "/v2")
		out.URL.RawPath = ""
	}
	for k, v := range host.Header {
		if out.Header.Get(k) == "" {
			out.Header[k] = v
		}
	}
	if c.userAgent != "" && out.Header.Get("User-Agent") == "" {
		out.Header.Set("User-Agent", c.userAgent)
	}
	if host.Authorizer != nil {
		if err := host.Authorizer.Authorize(ctx, out); err != nil {
			return nil, fmt.Errorf("authorizing %s %s on %s: %w", req.Method, req.URL.Path, host.Host, err)
		}
	}
	client := host.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(out)
	if err != nil {
		// url.Error would print the URL, query and all: the transport's
		// errors name the request already.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		var te *TransferError
		var g *GaveUpError
		if !errors.As(err, &te) && !errors.As(err, &g) {
			err = fmt.Errorf("%s %s on %s: %w", req.Method, req.URL.Path, host.Host, err)
		}
		return nil, err
	}
	return resp, nil
}

// do sends one request for /v2/<name>/<rest> of repo; body, when not nil,
// is replayable.
func (c *Client) do(ctx context.Context, method, repo, rest string, body []byte, header http.Header) (*http.Response, error) {
	req, err := c.newRequest(ctx, method, repo, rest, body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return c.send(ctx, req)
}

// drain reads what is left of a small answer and closes it, so that its
// connection goes back to the pool.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
}
