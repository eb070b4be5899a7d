package remote

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"

	remoteerrors "github.com/containerd/containerd/v2/core/remotes/errors"
)

// Transient reports whether err is a failure that another attempt may not
// meet: the one test of it. Transient: a connection refused, reset or
// closed early, a body cut short, a stall or other timeout, and the answers
// 408, 429, 500, 502, 503 and 504. Not: everything else, in particular
// 400, 401, 403, 404, TLS and DNS failures, a digest mismatch, the caller's
// cancellation, and a *GaveUpError, which is final.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	var gaveUp *GaveUpError
	if errors.As(err, &gaveUp) {
		return false
	}
	var se *StatusError
	if errors.As(err, &se) {
		return transientStatus(se.StatusCode)
	}
	var ue remoteerrors.ErrUnexpectedStatus
	if errors.As(err, &ue) {
		return transientStatus(ue.StatusCode)
	}
	var stall *StallError
	if errors.As(err, &stall) {
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || isTLS(err) {
		return false
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return false
	}
	// net.ErrClosed: net/http closed the connection under a body it was
	// writing, when the other side reset it.
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func transientStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}
