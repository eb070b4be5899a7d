// Package remote is bundle's one way to registries: containerd's docker
// resolver over hosts.toml directories and docker config credentials, the
// one hand-written client for the calls the resolver does not make
// (Client), and the one retry policy every request of either goes through
// (Policy, Attempts, and the transport that applies them).
package remote

import (
	"io"
	"time"
)

// Options configure every registry connection of one command.
type Options struct {
	PlainHTTP bool   // talk HTTP to every registry
	Insecure  bool   // skip TLS verification
	HostsDir  string // containerd hosts.toml directory (certs.d layout); "" for none
	// DockerConfigDir holds config.json; "" means $DOCKER_CONFIG or ~/.docker.
	DockerConfigDir string
	// AuthFile, when set, is the one credentials file: containers-auth.json
	// (podman, skopeo, $REGISTRY_AUTH_FILE), which is docker's config.json
	// format, credential helpers included.
	AuthFile string
	// Debug, when set, receives one line per request: method, address
	// without its query, status, bytes and time.
	Debug io.Writer
	// The retry policy (Policy says what each means); zero means the default.
	MaxRetries    int // < 0: no retries
	MinBackoff    time.Duration
	MaxBackoff    time.Duration
	MaxRetryAfter time.Duration
	StallTimeout  time.Duration // < 0: never cut a stalled connection
	UserAgent     string
}
