package remote

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/containerd/containerd/v2/core/remotes/docker"
)

// Do sends a raw registry API request (req.URL.Host is the registry name
// of a reference, such as "docker.io" or "127.0.0.1:5000", and its path
// starts with /v2/) through the first configured host able to serve it,
// with that host's scheme, TLS, headers and authorization. On 401 it lets
// the authorizer read the challenge and tries once more. It exists for the
// calls containerd's resolver does not make or hides the answers of: the
// referrers API, HEAD of a blob, response headers of a push.
func Do(ctx context.Context, hosts docker.RegistryHosts, req *http.Request) (*http.Response, error) {
	name := req.URL.Host
	list, err := hosts(name)
	if err != nil {
		return nil, fmt.Errorf("configuring registry %s: %w", name, err)
	}
	host, ok := pickHost(list, needs(req))
	if !ok {
		return nil, fmt.Errorf("registry %s: no configured host can serve %s %s: check the hosts.toml capabilities under --hosts-dir", name, req.Method, req.URL.Path)
	}
	ctx = withRepositoryScope(ctx, req)
	resp, err := send(ctx, host, req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || host.Authorizer == nil {
		return resp, err
	}
	if !replayable(req) {
		return resp, nil
	}
	if err := host.Authorizer.AddResponses(ctx, []*http.Response{resp}); err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("authorizing %s %s on %s: %w", req.Method, req.URL.Path, name, err)
	}
	resp.Body.Close()
	return send(ctx, host, req)
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

// send sends a copy of req rewritten for host.
func send(ctx context.Context, host docker.RegistryHost, req *http.Request) (*http.Response, error) {
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
		return nil, fmt.Errorf("%s %s://%s%s: %w", req.Method, host.Scheme, host.Host, out.URL.Path, err)
	}
	return resp, nil
}
