// Package remote sets up registry clients: containerd's docker resolver with
// hosts.toml directories, credentials from the docker config, plain HTTP,
// TLS verification and retries.
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
	// Retries and backoff for 429, 5xx and reset connections.
	MaxRetries int           // default 5
	MinBackoff time.Duration // default 200ms
	UserAgent  string
}
