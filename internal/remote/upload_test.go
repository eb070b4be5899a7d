package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/bundle-dev/bundle/internal/testregistry"
)

// guarded is a blob source that notes any read after its Close: what
// net/http did to a retried upload's pooled reader, a nil-pointer panic.
// It gives 64 KiB a read at the pace of a decompressor, so that net/http is
// often inside a read of it when the connection dies.
type guarded struct {
	mu     sync.Mutex
	r      io.Reader
	closed bool
	late   *atomic.Int64
}

func (g *guarded) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		g.late.Add(1)
		return 0, errors.New("read after close")
	}
	time.Sleep(100 * time.Microsecond) // the source's pace, not synchronisation
	return g.r.Read(p[:min(len(p), 64<<10)])
}

func (g *guarded) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	return nil
}

// Connections reset in the middle of upload bodies, hundreds of times,
// several uploads at once: every blob lands, no body is read after it was
// released, and (under -race) nothing races or panics. Each attempt reads
// its own body from a fresh open().
func TestUploadsSurviveResetsMidBody(t *testing.T) {
	const blobs, size = 80, 256 << 10
	up := testregistry.NewDistribution(t)
	// A 503 or 429 that comes before the body is all sent leaves net/http
	// writing it after the attempt has its answer; a reset cuts it.
	p := testregistry.NewProxy(t, up, testregistry.Faults{Rate: 0.4, Seed: 11, Kinds: []testregistry.FaultKind{testregistry.Fault503, testregistry.Fault429, testregistry.FaultReset}})
	opts := quick
	opts.MaxRetries = 30                 // the point is the resets, not the budget
	opts.StallTimeout = 10 * time.Second // nor stalls: a loaded machine is slow
	ctx := context.Background()
	_, client := opts.Connect(ctx)
	var late, opens atomic.Int64
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i := range blobs {
		g.Go(func() error {
			data := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, size/2)
			d := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(data), Size: int64(len(data))}
			open := func() (io.ReadCloser, error) {
				opens.Add(1)
				return &guarded{r: bytes.NewReader(data), late: &late}, nil
			}
			if _, err := client.PushBlob(gctx, p.Host+"/app", d, "", open, io.Discard); err != nil {
				return fmt.Errorf("blob %d: %w", i, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if n := late.Load(); n != 0 {
		t.Fatalf("%d reads of an upload body after its close", n)
	}
	faults := 0
	for _, n := range p.Injected() {
		faults += n
	}
	if faults < blobs/2 || opens.Load() <= blobs {
		t.Fatalf("%d faults and %d opens for %d blobs: the faults did not bite", faults, opens.Load(), blobs)
	}
	t.Logf("%d blobs through %d faults (%v), %d opens, in %v", blobs, faults, p.Injected(), opens.Load(), time.Since(start))
}

// An upload body closed while net/http's writer is inside a read of it
// waits for that read, closes its source once, and reads nothing after.
func TestUploadBodyClosesOnceAndNeverReadsAfter(t *testing.T) {
	var late atomic.Int64
	src := &guarded{r: bytes.NewReader(make([]byte, 1<<20)), late: &late}
	b := newUploadBody(src, io.Discard, 1<<20)
	var g errgroup.Group
	g.Go(func() error {
		buf := make([]byte, 32<<10)
		for {
			if _, err := b.Read(buf); err != nil {
				if err == io.EOF || errors.Is(err, errBodyClosed) {
					return nil
				}
				return err
			}
		}
	})
	g.Go(b.Close)
	g.Go(b.Close)
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if n := late.Load(); n != 0 {
		t.Fatalf("%d reads of the source after its close", n)
	}
}
