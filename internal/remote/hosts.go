package remote

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
	dockerconfig "github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
)

// maxIdlePerHost keeps enough warm connections for concurrent blob
// transfers to one registry (net/http's default is 2).
const maxIdlePerHost = 32

// dockerHubAuthKey is where the docker CLI keeps Docker Hub's credentials.
const dockerHubAuthKey = "https://index.docker.io/v1/"

// Hosts configures the registry hosts of every connection: hosts.toml from
// HostsDir, plain HTTP, TLS verification, docker config credentials kept
// from token servers that would get them in the clear, and the transport
// every request goes through (transport.go).
func (o Options) Hosts(ctx context.Context) docker.RegistryHosts {
	creds := o.credentials()
	opts := config.HostOptions{
		Credentials:  creds,
		UpdateClient: o.updateClient,
	}
	if o.HostsDir != "" {
		opts.HostDir = config.HostDirFromRoot(o.HostsDir)
	}
	if o.PlainHTTP {
		opts.DefaultScheme = "http"
	}
	if o.Insecure {
		opts.DefaultTLS = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user asked for --insecure
	}
	return o.cacheHosts(config.ConfigureHosts(ctx, opts), creds)
}

// cacheHosts configures each host once. containerd's ConfigureHosts builds
// a new transport on every call, and the resolver calls it for every
// resolve, fetch and push: without the cache no connection or token would
// be reused.
func (o Options) cacheHosts(hosts docker.RegistryHosts, creds func(string) (string, string, error)) docker.RegistryHosts {
	var mu sync.Mutex
	cache := map[string][]docker.RegistryHost{}
	return func(host string) ([]docker.RegistryHost, error) {
		mu.Lock()
		defer mu.Unlock()
		if h, ok := cache[host]; ok {
			return slices.Clone(h), nil
		}
		h, err := hosts(host)
		if err != nil {
			return nil, err
		}
		for i := range h {
			if h[i].Authorizer != nil {
				h[i].Authorizer = &realmGuard{Authorizer: h[i].Authorizer, plainHTTP: o.PlainHTTP, creds: creds}
			}
		}
		cache[host] = h
		return slices.Clone(h), nil
	}
}

// Resolver is containerd's docker resolver over Hosts.
func (o Options) Resolver(ctx context.Context) remotes.Resolver {
	return o.resolver(o.Hosts(ctx))
}

func (o Options) resolver(hosts docker.RegistryHosts) remotes.Resolver {
	ro := docker.ResolverOptions{Hosts: hosts}
	if o.UserAgent != "" {
		ro.Headers = http.Header{"User-Agent": {o.UserAgent}}
	}
	return docker.NewResolver(ro)
}

// Connect sets up both ways to registries, sharing one set of hosts (so
// connections and tokens) and the one retry policy: containerd's resolver,
// and the Client for the calls the resolver does not make.
func (o Options) Connect(ctx context.Context) (remotes.Resolver, *Client) {
	hosts := o.Hosts(ctx)
	return o.resolver(hosts), NewClient(hosts, o.Policy(), o.UserAgent)
}

// updateClient puts each client containerd builds on the transport.
// containerd may hand over a copy of a client already done.
func (o Options) updateClient(c *http.Client) error {
	if _, done := c.Transport.(*transport); done {
		return nil
	}
	if tr, ok := c.Transport.(*http.Transport); ok {
		tr.MaxIdleConns = max(tr.MaxIdleConns, 4*maxIdlePerHost)
		tr.MaxIdleConnsPerHost = maxIdlePerHost
	}
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = &transport{base: base, policy: o.Policy(), debug: newDebugLog(o.Debug)}
	return nil
}

// ConfigDir is the docker config directory credentials come from:
// DockerConfigDir, else $DOCKER_CONFIG, else ~/.docker.
func (o Options) ConfigDir() string {
	if o.DockerConfigDir != "" {
		return o.DockerConfigDir
	}
	return defaultConfigDir()
}

func defaultConfigDir() string {
	// Read the variable ourselves: docker/cli caches it once per process.
	if d := os.Getenv(dockerconfig.EnvOverrideConfigDir); d != "" {
		return d
	}
	return dockerconfig.Dir()
}

// credentials answers containerd's authorizer from the docker config,
// loaded once on first use so that a command that needs no credentials
// never reads it.
func (o Options) credentials() func(host string) (string, string, error) {
	path := filepath.Join(o.ConfigDir(), dockerconfig.ConfigFileName)
	if o.AuthFile != "" {
		path = o.AuthFile
	}
	load := sync.OnceValues(func() (*configfile.ConfigFile, error) {
		if o.AuthFile != "" {
			return loadAuthFile(o.AuthFile)
		}
		cf, err := dockerconfig.Load(filepath.Dir(path))
		if err != nil {
			return nil, fmt.Errorf("reading registry credentials from %s: %w (fix or move the file, or point DOCKER_CONFIG elsewhere)", path, err)
		}
		return cf, nil
	})
	return func(host string) (string, string, error) {
		cf, err := load()
		if err != nil {
			return "", "", err
		}
		ac, err := cf.GetAuthConfig(authKey(host))
		if err != nil {
			return "", "", fmt.Errorf("getting credentials for %s from %s: %w", host, path, err)
		}
		if ac.IdentityToken != "" {
			// containerd's convention: no user name means a refresh token.
			return "", ac.IdentityToken, nil
		}
		return ac.Username, ac.Password, nil
	}
}

// loadAuthFile reads a containers-auth.json (or any config.json). Unlike
// the docker config directory, a file named on purpose must exist.
func loadAuthFile(path string) (*configfile.ConfigFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading registry credentials: %w (--authfile or REGISTRY_AUTH_FILE)", err)
	}
	defer f.Close()
	cf := configfile.New(path)
	if err := cf.LoadFromReader(f); err != nil {
		return nil, fmt.Errorf("reading registry credentials from %s: %w", path, err)
	}
	return cf, nil
}

// authKey is the docker config key for a registry host: Docker Hub's
// hosts share the legacy index URL.
func authKey(host string) string {
	switch host {
	case "docker.io", "registry-1.docker.io", "index.docker.io":
		return dockerHubAuthKey
	}
	return host
}
