package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/cupwriter"
	"github.com/vbauerster/mpb/v8/decor"
)

// Display is a Tracker that draws on a writer until Close.
type Display interface {
	Tracker
	// Write prints text (notices) with the display: above the bars on a
	// terminal, so that neither overdraws the other.
	io.Writer
	// Close draws the final state and releases the display; call it once,
	// before printing anything else to the same writer.
	Close()
}

// New picks the display for w: nothing when quiet, bars when w is a
// terminal, otherwise a plain line every interval.
func New(w io.Writer, quiet bool, interval time.Duration) Display {
	switch {
	case quiet:
		return nopDisplay{w}
	case IsTerminal(w):
		return NewBars(w)
	default:
		return NewLines(w, interval)
	}
}

// IsTerminal reports whether w is a terminal bars can be drawn on, with
// the check mpb itself relies on (cupwriter), so both agree. A terminal of
// size zero (some CI pseudo-terminals) would show no bars at all.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	cw := cupwriter.New(f, false)
	if !cw.IsTerminal() {
		return false
	}
	width, height, err := cw.GetTermSize()
	return err == nil && width > 0 && height > 0
}

// Bytes formats n as a human size: "300.0 MiB".
func Bytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("% .1f", decor.SizeB1024(n))
}

type nopDisplay struct {
	io.Writer
}

func (nopDisplay) Start(string, string, int64) {}
func (nopDisplay) Add(string, int64)           {}
func (nopDisplay) Done(string, bool, error)    {}
func (nopDisplay) Close()                      {}

// totals are the counts every display shows: transfers known and finished,
// and bytes known and moved. Totals grow as transfers start, because
// export and import discover the graph while they copy it.
type totals struct {
	started, finished, failed int
	total, moved              int64
	active                    map[string]transfer
}

type transfer struct {
	total, seen int64
}

func (t *totals) start(id string, total int64) {
	if t.active == nil {
		t.active = make(map[string]transfer)
	}
	t.started++
	t.total += total
	t.active[id] = transfer{total: total}
}

func (t *totals) add(id string, n int64) {
	tr, ok := t.active[id]
	if !ok {
		return
	}
	tr.seen += n
	t.active[id] = tr
	t.moved += n
}

// done returns the bytes a transfer did not report, so that a skipped or
// mounted blob still brings the byte count to its total.
func (t *totals) done(id string, err error) int64 {
	tr, ok := t.active[id]
	if !ok {
		return 0
	}
	delete(t.active, id)
	t.finished++
	if err != nil {
		t.failed++
		return 0
	}
	rest := max(tr.total-tr.seen, 0)
	t.moved += rest
	return rest
}

// Lines prints one plain line of totals every interval while something
// changed, and a last one on Close: fit for logs and pipes.
type Lines struct {
	w        io.Writer
	mu       sync.Mutex
	t        totals
	printed  string
	stop     chan struct{}
	stopped  sync.WaitGroup
	closeOne sync.Once
}

// NewLines starts a line display on w; interval <= 0 prints only on Close.
func NewLines(w io.Writer, interval time.Duration) *Lines {
	l := &Lines{w: w, stop: make(chan struct{})}
	if interval > 0 {
		l.stopped.Add(1)
		go l.tick(interval)
	}
	return l
}

func (l *Lines) tick(interval time.Duration) {
	defer l.stopped.Done()
	tk := time.NewTicker(interval)
	defer tk.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tk.C:
			l.print()
		}
	}
}

// Write prints p between progress lines.
func (l *Lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *Lines) Start(id, _ string, total int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.start(id, total)
}

func (l *Lines) Add(id string, n int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.add(id, n)
}

func (l *Lines) Done(id string, _ bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.done(id, err)
}

// Close prints the final line and stops the ticker.
func (l *Lines) Close() {
	l.closeOne.Do(func() {
		close(l.stop)
		l.stopped.Wait()
		l.print()
	})
}

func (l *Lines) print() {
	l.mu.Lock()
	defer l.mu.Unlock()
	line := l.t.line()
	if line == l.printed || l.t.started == 0 {
		return
	}
	l.printed = line
	fmt.Fprintln(l.w, line)
}

func (t *totals) line() string {
	s := fmt.Sprintf("%d/%d blobs, %s/%s", t.finished, t.started, Bytes(t.moved), Bytes(t.total))
	if t.failed > 0 {
		s += fmt.Sprintf(", %d failed", t.failed)
	}
	return s
}
