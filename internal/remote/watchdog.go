package remote

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
)

// errStalled is the cause a watchdog cancels its request with.
var errStalled = errors.New("stalled")

// watchdog cuts one request whose connection carries nothing for its
// timeout while we wait on it: from sending until the answer's headers,
// and during every read of the answer's body. It does not run while we
// are the slow side (reading the request body from a bundle, or not
// reading the answer yet): an archive writer that pauses is no stall.
type watchdog struct {
	timeout time.Duration
	cancel  context.CancelCauseFunc

	mu       sync.Mutex
	timer    *time.Timer
	answered bool // the answer's headers are in: the request body no longer matters
	done     bool
}

// newWatchdog returns the context the request must be sent with. A
// timeout <= 0 gives a watchdog that never bites.
func newWatchdog(ctx context.Context, timeout time.Duration) (*watchdog, context.Context) {
	ctx, cancel := context.WithCancelCause(ctx)
	return &watchdog{timeout: timeout, cancel: cancel}, ctx
}

// wait starts counting: we wait on the network for up to d.
func (w *watchdog) wait(d time.Duration) {
	if w.timeout <= 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	if w.timer == nil {
		w.timer = time.AfterFunc(d, func() { w.cancel(errStalled) })
		return
	}
	w.timer.Reset(d)
}

// pause stops counting: the network is not what we wait on.
func (w *watchdog) pause() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
	}
}

// sent resumes counting after we handed the transport more of the request
// body; after the last of it, a large body gets longer for its answer,
// since a registry hashes or moves a blob before it answers the PUT.
func (w *watchdog) sent(last bool, size int64) {
	w.mu.Lock()
	answered := w.answered
	w.mu.Unlock()
	if answered {
		return
	}
	d := w.timeout
	if last && size > 0 {
		d += time.Duration(size/verifyRate) * time.Second
	}
	w.wait(d)
}

// verifyRate is the slowest a registry is expected to check a blob it
// received before answering its PUT, in bytes a second.
const verifyRate = 64 << 20

// answer stops counting for the headers that have come.
func (w *watchdog) answer() {
	w.mu.Lock()
	w.answered = true
	w.mu.Unlock()
	w.pause()
}

// release ends the watchdog and its request's context.
func (w *watchdog) release() {
	w.mu.Lock()
	w.done = true
	if w.timer != nil {
		w.timer.Stop()
	}
	w.mu.Unlock()
	w.cancel(nil)
}

// explain turns the error of a request the watchdog cut into a stall.
func (w *watchdog) explain(ctx context.Context, err error) error {
	if context.Cause(ctx) == errStalled {
		return &StallError{After: w.timeout}
	}
	return err
}

// sendingBody is a request body that tells the watchdog when the transport
// is waiting on us (reading) and when on the network (writing what it read).
type sendingBody struct {
	io.ReadCloser
	w    *watchdog
	size int64
}

func (b *sendingBody) Read(p []byte) (int, error) {
	b.w.pause()
	n, err := b.ReadCloser.Read(p)
	b.w.sent(err == io.EOF, b.size)
	return n, err
}

// watchedBody is an answer's body under the watchdog. Its errors are
// *TransferErrors naming the request: never io.ErrUnexpectedEOF itself,
// which containerd's fetcher would answer with a reconnection loop of its
// own under ours.
type watchedBody struct {
	rc  io.ReadCloser
	w   *watchdog
	ctx context.Context
	req *http.Request

	once sync.Once
}

func (b *watchedBody) Read(p []byte) (int, error) {
	b.w.wait(b.w.timeout)
	n, err := b.rc.Read(p)
	b.w.pause()
	if err != nil && err != io.EOF {
		err = newTransferError(b.req, b.w.explain(b.ctx, err))
	}
	return n, err
}

func (b *watchedBody) Close() error {
	err := b.rc.Close()
	b.once.Do(b.w.release)
	return err
}
