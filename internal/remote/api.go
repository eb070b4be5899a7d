// Package remote is bundle's one way to registries: containerd's docker
// resolver over hosts.toml directories and docker config credentials, the
// one hand-written client for the calls the resolver does not make
// (Client), and the one retry policy every request of either goes through
// (Policy, Attempts, and the transport that applies them).
package remote

import (
	"time"
)

// Options configure every registry connection of one command.
type Options struct {
	PlainHTTP bool   // talk HTTP to every registry
	Insecure  bool   // skip TLS verification
	HostsDir  string // containerd hosts.toml directory (certs.d layout); "" for none
	// DockerConfigDir holds config.json; "" means $DOCKER_CONFIG or ~/.docker.
	DockerConfigDir string
	// The retry policy (Policy says what each means); zero means the default.
	MaxRetries    int // < 0: no retries
	MinBackoff    time.Duration
	MaxBackoff    time.Duration
	MaxRetryAfter time.Duration
	StallTimeout  time.Duration // < 0: never cut a stalled connection
	UserAgent     string
}
