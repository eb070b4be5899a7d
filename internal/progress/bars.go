package progress

import (
	"io"
	"sync"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// Bars draws mpb progress bars: overall bytes, overall blobs, and one bar
// per transfer in flight, removed when it ends.
type Bars struct {
	w      io.Writer
	p      *mpb.Progress
	bytes  *mpb.Bar
	blobs  *mpb.Bar
	mu     sync.Mutex
	t      totals
	bars   map[string]*mpb.Bar
	closed bool
}

// NewBars starts bars on w.
func NewBars(w io.Writer) *Bars {
	// Auto refresh: New has already decided w is a terminal; trust that.
	p := mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithAutoRefresh())
	b := &Bars{w: w, p: p, bars: make(map[string]*mpb.Bar)}
	// Priority keeps the totals above the per-transfer bars.
	b.bytes = p.AddBar(0, mpb.BarPriority(-2),
		mpb.PrependDecorators(decor.Name("bytes ", decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.Counters(decor.SizeB1024(0), "% .1f / % .1f")))
	b.blobs = p.AddBar(0, mpb.BarPriority(-1),
		mpb.PrependDecorators(decor.Name("blobs ", decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.CountersNoUnit("%d / %d")))
	return b
}

// Write prints p above the bars; after Close, straight to the output.
func (b *Bars) Write(p []byte) (int, error) {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return b.w.Write(p)
	}
	return b.p.Write(p)
}

func (b *Bars) Start(id, name string, total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.t.start(id, total)
	b.bytes.SetTotal(b.t.total, false)
	b.blobs.SetTotal(int64(b.t.started), false)
	b.bars[id] = b.p.AddBar(total, mpb.BarRemoveOnComplete(),
		mpb.PrependDecorators(decor.Name(shorten(name, 24), decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.Counters(decor.SizeB1024(0), "% .1f / % .1f")))
}

func (b *Bars) Add(id string, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bar, ok := b.bars[id]; ok {
		b.t.add(id, n)
		bar.IncrInt64(n)
		b.bytes.IncrInt64(n)
	}
}

func (b *Bars) Done(id string, _ bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	bar, ok := b.bars[id]
	if !ok {
		return
	}
	delete(b.bars, id)
	rest := b.t.done(id, err)
	b.bytes.IncrInt64(rest)
	b.blobs.Increment()
	if err != nil {
		bar.Abort(true)
		return
	}
	bar.SetTotal(-1, true)
}

// Close completes every bar (aborting transfers still open) and waits for
// the last frame, so what follows on w is not overdrawn.
func (b *Bars) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	for id, bar := range b.bars {
		bar.Abort(true)
		delete(b.bars, id)
	}
	// An unfinished run keeps its true totals on screen: abort, not complete.
	for _, bar := range []*mpb.Bar{b.bytes, b.blobs} {
		if b.t.finished == b.t.started && b.t.failed == 0 {
			bar.SetTotal(-1, true)
		} else {
			bar.Abort(false)
		}
	}
	b.mu.Unlock()
	b.p.Wait()
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n+1:]
}
