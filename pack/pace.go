package pack

import (
	"context"
	"io"
	"sync"
	"time"
)

// pacer tells the prefetchers whether the archive writer is starved: waiting
// for bytes three quarters of its time or more, while they come in slower
// than prefetchRate. Only then does fetching ahead into the cache pay;
// otherwise it writes bytes twice and slows the writer down. Measured on a
// loopback registry sharing the machine's two cores: the writer waits for
// bytes about 85% of the time at about 330 MB/s, and prefetching made the
// export 1.3 to 1.7 times slower. A single stream over a WAN runs far
// below that rate, and there more streams are what help.
type pacer struct {
	mu      sync.Mutex
	starved bool
	done    bool
	changed chan struct{} // closed when the prefetchers should look again
}

func newPacer() *pacer { return &pacer{changed: make(chan struct{})} }

func (p *pacer) set(starved bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// After finish the channel is closed for good.
	if starved && !p.starved && !p.done {
		close(p.changed)
		p.changed = make(chan struct{})
	}
	p.starved = starved
}

func (p *pacer) isStarved() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starved
}

// finish releases the prefetchers for good: the writer is done.
func (p *pacer) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.done {
		p.done = true
		close(p.changed)
	}
}

// wait blocks until the writer is starved or done, reporting done.
func (p *pacer) wait(ctx context.Context) (done bool, err error) {
	for {
		p.mu.Lock()
		done, starved, ch := p.done, p.starved, p.changed
		p.mu.Unlock()
		if done || starved {
			return done, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// gaugeWindow is how much of the writer's time one verdict covers: long
// enough that a single slow request does not start the prefetchers.
const gaugeWindow = 100 * time.Millisecond

// prefetchRate is the byte rate of the writer's own stream below which more
// streams can help.
const prefetchRate = 128 << 20 // bytes per second

// gauge splits the writer's time into waiting for bytes and everything
// else (the archive and the disk), and hands the pacer a verdict each
// window. Only the writer goroutine uses it.
type gauge struct {
	pace          *pacer
	now           func() time.Time
	mark          time.Time
	waiting, busy time.Duration
	bytes         int64
}

func newGauge(p *pacer, now func() time.Time) *gauge {
	return &gauge{pace: p, now: now, mark: now()}
}

func (g *gauge) wait() {
	now := g.now()
	g.busy += now.Sub(g.mark)
	g.mark = now
}

// done ends a wait that brought n bytes.
func (g *gauge) done(n int) {
	now := g.now()
	g.waiting += now.Sub(g.mark)
	g.bytes += int64(n)
	g.mark = now
	if total := g.waiting + g.busy; total >= gaugeWindow {
		slow := float64(g.bytes) < prefetchRate*total.Seconds()
		g.pace.set(g.waiting*4 > total*3 && slow)
		g.waiting, g.busy, g.bytes = 0, 0, 0
	}
}

// timedReader counts the time in Read as waiting.
type timedReader struct {
	io.ReadCloser
	g *gauge
}

func (t *timedReader) Read(p []byte) (int, error) {
	t.g.wait()
	n, err := t.ReadCloser.Read(p)
	t.g.done(n)
	return n, err
}
