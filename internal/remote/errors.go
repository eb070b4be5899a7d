package remote

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// StatusError is an answer a registry request did not want: the one status
// error of bundle's registry calls, which Explain classifies. It names the
// request by method and path only: queries carry upload session state and
// signed redirect tokens, which have no place in a message.
type StatusError struct {
	Method     string
	Registry   string // host[:port] that answered
	Path       string // without the query
	StatusCode int
	Status     string // "503 Service Unavailable"
	Body       []byte // the start of the registry's error document
	RetryAfter string // the Retry-After header, if any

	step string // what the budget counts it as; see stepOf
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s %s on %s: %s", e.Method, e.Path, e.Registry, e.Status)
	if m := e.Message(); m != "" {
		msg += ": " + m
	}
	return msg
}

// Message is the registry's own words: the codes and messages of its error
// document, else the start of its body.
func (e *StatusError) Message() string {
	var doc struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(e.Body, &doc) == nil && len(doc.Errors) > 0 {
		parts := make([]string, 0, len(doc.Errors))
		for _, x := range doc.Errors {
			parts = append(parts, strings.TrimSpace(x.Code+" "+x.Message))
		}
		return strings.Join(parts, "; ")
	}
	b := bytes.TrimSpace(e.Body)
	if len(b) > 200 {
		b = append(b[:200:200], "..."...)
	}
	return string(b)
}

// maxErrorBody bounds what is read of an unwanted answer.
const maxErrorBody = 64 << 10

// newStatusError reads the start of resp's body and closes it.
func newStatusError(resp *http.Response) *StatusError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
	e := &StatusError{
		StatusCode: resp.StatusCode,
		Status:     resp.Status,
		Body:       body,
		RetryAfter: resp.Header.Get("Retry-After"),
	}
	if resp.Request != nil && resp.Request.URL != nil {
		e.Method, e.Registry, e.Path = resp.Request.Method, resp.Request.URL.Host, resp.Request.URL.Path
		e.step = stepOfRequest(resp.Request)
	}
	if e.Status == "" {
		e.Status = fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return e
}

// TransferError is a request that broke before its answer was whole: a
// connection refused, reset or closed, a body cut short, a stall. Like
// StatusError it names the request without its query.
type TransferError struct {
	Method   string
	Registry string
	Path     string
	Err      error

	step string // what the budget counts it as; see stepOf
}

func newTransferError(req *http.Request, err error) *TransferError {
	return &TransferError{Method: req.Method, Registry: req.URL.Host, Path: req.URL.Path, Err: err, step: stepOfRequest(req)}
}

func (e *TransferError) Error() string {
	return fmt.Sprintf("%s %s on %s: %v", e.Method, e.Path, e.Registry, e.Err)
}

func (e *TransferError) Unwrap() error { return e.Err }

// StallError is a connection that carried nothing for the stall timeout.
type StallError struct{ After time.Duration }

func (e *StallError) Error() string {
	return fmt.Sprintf("no data for %v (--stall-timeout)", e.After)
}

// Timeout reports true: a stall is a timeout, and transient.
func (e *StallError) Timeout() bool { return true }

// GaveUpError ends an object whose requests kept failing for the policy's
// whole budget. It is final: it does not unwrap to the transient failure it
// reports (only to a *StatusError), and it is no timeout, so that no retry
// loop above it (containerd's resolver has its own) takes it for a fault
// worth another go.
type GaveUpError struct {
	Attempts int
	Last     error // the last failure: a *StatusError or a *TransferError
}

func (e *GaveUpError) Error() string {
	registry, request := "the registry", ""
	var se *StatusError
	var te *TransferError
	switch {
	case errors.As(e.Last, &se):
		registry, request = se.Registry, se.Method+" "+se.Path
	case errors.As(e.Last, &te):
		registry, request = te.Registry, te.Method+" "+te.Path
	}
	last := lastWords(e.Last)
	if request != "" {
		last = request + ": " + last
	}
	if errors.Is(e.Last, syscall.ECONNREFUSED) {
		// Said once: the registry, that it is not there, what to check.
		return fmt.Sprintf("registry %s is unreachable: it refused the connection %d times in a row (last: %s): check the address and port, that the registry is running, and --plain-http (HTTP) versus HTTPS", registry, e.Attempts, request)
	}
	return fmt.Sprintf("registry %s failed %d attempts in a row (last: %s): %s", registry, e.Attempts, last, advice(registry, e.Last))
}

// lastWords is the failure itself, without the request that GaveUpError
// names already.
func lastWords(err error) string {
	var se *StatusError
	if errors.As(err, &se) {
		if m := se.Message(); m != "" {
			return se.Status + ": " + m
		}
		return se.Status
	}
	var te *TransferError
	if errors.As(err, &te) {
		return te.Err.Error()
	}
	return err.Error()
}

// advice says what to do about a failure that outlasted the budget.
func advice(registry string, err error) string {
	var se *StatusError
	var stall *StallError
	switch {
	case errors.As(err, &se) && se.StatusCode == http.StatusTooManyRequests:
		return "the registry is limiting the rate of requests: wait, or lower --concurrency, then run the same command again; it resumes where it stopped"
	case errors.As(err, &se):
		return "the registry, or a proxy in front of it, keeps failing: run the same command again later; it resumes where it stopped"
	case errors.As(err, &stall):
		return "the link stopped carrying data: check the network and proxies in between, or raise --stall-timeout if it is that slow; run the same command again to resume"
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("registry %s is unreachable: check the address and port, that the registry is running, and --plain-http (HTTP) versus HTTPS", registry)
	}
	return "the connection keeps breaking: check the network and any proxy in between, then run the same command again; it resumes where it stopped"
}

// Unwrap exposes the last status answer, which is no transient error to
// anyone, and hides the transport failures, which would be.
func (e *GaveUpError) Unwrap() error {
	var se *StatusError
	if errors.As(e.Last, &se) {
		return se
	}
	return nil
}

// Timeout reports false: url.Error and containerd ask.
func (e *GaveUpError) Timeout() bool { return false }

// final marks an error the transport returns as not worth retrying by
// anyone above it: containerd retries any error that is a timeout, and a
// DNS lookup that timed out is one.
type final struct{ err error }

func (f final) Error() string   { return f.err.Error() }
func (f final) Unwrap() error   { return f.err }
func (f final) Timeout() bool   { return false }
func (f final) Temporary() bool { return false }
