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
	"time"

	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
	dockerconfig "github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
)

// The retry defaults when Options leave them zero.
const (
	DefaultMaxRetries = 5
	DefaultMinBackoff = 200 * time.Millisecond
	// maxIdlePerHost keeps enough warm connections for concurrent blob
	// transfers to one registry (net/http's default is 2).
	maxIdlePerHost = 32
)

// dockerHubAuthKey is where the docker CLI keeps Docker Hub's credentials.
const dockerHubAuthKey = "https://index.docker.io/v1/"

// Hosts configures the registry hosts of every connection: hosts.toml from
// HostsDir, plain HTTP, TLS verification, docker config credentials and a
// retrying transport.
func (o Options) Hosts(ctx context.Context) docker.RegistryHosts {
	opts := config.HostOptions{
		Credentials:  o.credentials(),
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
	return cacheHosts(config.ConfigureHosts(ctx, opts))
}

// cacheHosts configures each host once. containerd's ConfigureHosts builds
// a new transport on every call, and the resolver calls it for every
// resolve, fetch and push: without the cache no connection or token would
// be reused.
func cacheHosts(hosts docker.RegistryHosts) docker.RegistryHosts {
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
		cache[host] = h
		return slices.Clone(h), nil
	}
}

// Resolver is containerd's docker resolver over Hosts.
func (o Options) Resolver(ctx context.Context) remotes.Resolver {
	ro := docker.ResolverOptions{Hosts: o.Hosts(ctx)}
	if o.UserAgent != "" {
		ro.Headers = http.Header{"User-Agent": {o.UserAgent}}
	}
	return docker.NewResolver(ro)
}

// updateClient wraps each client containerd builds in the retrying
// transport. containerd may hand over a copy of an already wrapped client.
func (o Options) updateClient(c *http.Client) error {
	if _, done := c.Transport.(*retryTransport); done {
		return nil
	}
	if tr, ok := c.Transport.(*http.Transport); ok {
		tr.MaxIdleConns = max(tr.MaxIdleConns, 4*maxIdlePerHost)
		tr.MaxIdleConnsPerHost = maxIdlePerHost
	}
	c.Transport = newRetryTransport(c.Transport, o.MaxRetries, o.MinBackoff)
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
	dir := o.ConfigDir()
	load := sync.OnceValues(func() (*configfile.ConfigFile, error) {
		cf, err := dockerconfig.Load(dir)
		if err != nil {
			return nil, fmt.Errorf("reading registry credentials from %s: %w (fix or move the file, or point DOCKER_CONFIG elsewhere)", filepath.Join(dir, dockerconfig.ConfigFileName), err)
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
			return "", "", fmt.Errorf("getting credentials for %s from %s: %w", host, filepath.Join(dir, dockerconfig.ConfigFileName), err)
		}
		if ac.IdentityToken != "" {
			// containerd's convention: no user name means a refresh token.
			return "", ac.IdentityToken, nil
		}
		return ac.Username, ac.Password, nil
	}
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
