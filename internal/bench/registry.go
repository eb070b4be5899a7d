package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// RegistryBinary is Debian's docker-registry (distribution 2.8).
const RegistryBinary = "/usr/bin/docker-registry"

// Registry is a docker-registry process on 127.0.0.1 with its own storage.
type Registry struct {
	Host string // 127.0.0.1:PORT
	Root string // storage root directory
	dir  string
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{}
	err  error
	once sync.Once
}

// StartRegistry starts docker-registry with storage under dir (created) and
// waits until /v2/ answers. Close stops it; so does cancelling ctx.
func StartRegistry(ctx context.Context, binary, dir string) (*Registry, error) {
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("registry binary %s: %w (apt-get install docker-registry, or pass -registry)", binary, err)
	}
	var lastErr error
	// A free port found by listening can be taken before the registry binds
	// it; a second port is the cheap cure.
	for range 3 {
		r, err := startRegistryOnce(ctx, binary, dir)
		if err == nil {
			return r, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func startRegistryOnce(ctx context.Context, binary, dir string) (*Registry, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &Registry{Host: fmt.Sprintf("127.0.0.1:%d", port), Root: filepath.Join(dir, "data"), dir: dir,
		out: &tailBuffer{max: 16 << 10}, done: make(chan struct{})}
	if err := os.MkdirAll(r.Root, 0o755); err != nil {
		return nil, fmt.Errorf("creating registry storage %s: %w", r.Root, err)
	}
	cfgPath := filepath.Join(dir, "config.yml")
	if err := writeFileAtomic(cfgPath, []byte(registryConfig(r.Root, r.Host))); err != nil {
		return nil, err
	}
	r.cmd = exec.CommandContext(ctx, binary, "serve", cfgPath)
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	r.cmd.Cancel = func() error { return r.cmd.Process.Signal(syscall.SIGTERM) }
	r.cmd.WaitDelay = 5 * time.Second
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", binary, err)
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	if err := r.waitReady(ctx); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// registryConfig keeps the registry quiet and free of background work that
// would land in the timings (upload purging, access logs).
func registryConfig(root, addr string) string {
	return fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: bundle-bench
`, root, addr)
}

func (r *Registry) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get("http://" + r.Host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-r.done:
			return fmt.Errorf("docker-registry exited before answering on %s (%v): %s", r.Host, r.err, r.out.String())
		case <-deadline.C:
			return fmt.Errorf("docker-registry did not answer on %s within 20s: %s", r.Host, r.out.String())
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close stops the process and waits for it. Storage stays: RemoveAll does
// that, so that a floor can still read the blob store of a stopped registry.
func (r *Registry) Close() {
	r.once.Do(func() {
		if r.cmd.Process != nil {
			_ = r.cmd.Process.Signal(syscall.SIGTERM)
		}
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	})
}

// RemoveAll stops the registry and deletes its directory.
func (r *Registry) RemoveAll() error {
	r.Close()
	if err := os.RemoveAll(r.dir); err != nil {
		return fmt.Errorf("removing registry storage %s: %w", r.dir, err)
	}
	return nil
}

// BlobStore is the directory under which the registry keeps blob data.
func (r *Registry) BlobStore() string {
	return filepath.Join(r.Root, "docker", "registry", "v2", "blobs")
}

// BlobPath is where the registry keeps the bytes of d.
func (r *Registry) BlobPath(d digest.Digest) string {
	hex := d.Encoded()
	return filepath.Join(r.BlobStore(), d.Algorithm().String(), hex[:2], hex, "data")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port on 127.0.0.1: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// writeFileAtomic writes data to path.partial and renames it into place.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".partial"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("renaming %s into place: %w", path, err)
	}
	return nil
}

// tailBuffer keeps the last max bytes written: enough of a child's output
// to say why it failed, never all of it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.buf))
}

var errTooLarge = errors.New("output larger than the limit")

// limitedBuffer keeps up to max bytes and fails beyond: a JSON report is
// small, and a runaway child must not grow the harness.
type limitedBuffer struct {
	max int
	buf bytes.Buffer
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.buf.Len()+len(p) > l.max {
		return 0, errTooLarge
	}
	return l.buf.Write(p)
}
