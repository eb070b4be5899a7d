package remote

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	remoteerrors "github.com/containerd/containerd/v2/core/remotes/errors"
	"github.com/containerd/errdefs"
	dockerconfig "github.com/docker/cli/cli/config"
)

// Explain turns the common failures of a registry call about ref into
// messages that say what to do; the result wraps err, for errors.Is and
// errors.As. It is the boundary where a failure's message is built: a
// *GaveUpError says all there is to say on its own, without the layers of
// wrapping around it, and no message keeps a URL's query (upload session
// state, signed redirects). Other errors come back as they are.
// Credentials are looked for where Hosts looks by default ($DOCKER_CONFIG,
// else ~/.docker).
func Explain(err error, ref string) error {
	if err == nil {
		return nil
	}
	host, repo := ref, ref
	// A bare "host:port" (an import --target without a prefix) would parse
	// as a docker.io repository with a tag: it names a registry.
	if strings.Contains(ref, "/") {
		if h, r, _, _, perr := SplitReference(ref); perr == nil {
			host, repo = h, r
		}
	}
	var gaveUp *GaveUpError
	switch {
	case errors.As(err, &gaveUp):
		return explain(err, "%s: %v", ref, gaveUp)
	case isTLS(err):
		return explain(err, "%s: TLS with %s failed: if the registry uses a private or self-signed CA, put its certificate in --hosts-dir (DIR/%s/ca.crt, containerd's certs.d layout) or pass --insecure to skip verification; if it speaks plain HTTP, pass --plain-http: %v",
			ref, host, host, err)
	case isUnreachable(err):
		return explain(err, "%s: registry %s is unreachable: check the address and port, that the registry is running, and --plain-http (HTTP) versus HTTPS: %v", ref, host, err)
	case isAuth(err):
		return explain(err, "%s: access denied by %s: %s; log in with `docker login %s` or set DOCKER_CONFIG to a directory whose config.json has credentials for it: %v",
			ref, host, credentialsSource(host), host, err)
	case isNotFound(err):
		return explain(err, "%s: not found: the tag or digest does not exist in repository %s on %s; check the name (no host means docker.io) and the tag: %v", ref, repo, host, err)
	}
	if msg := redactURLs(err.Error()); msg != err.Error() {
		return &explained{msg: msg, err: err}
	}
	return err
}

// explained is a message built at the boundary over the error it explains.
type explained struct {
	msg string
	err error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }

func explain(err error, format string, args ...any) error {
	return &explained{msg: redactURLs(fmt.Sprintf(format, args...)), err: err}
}

// urlWithQuery matches a URL in a message, its query apart.
var urlWithQuery = regexp.MustCompile(`(https?://[^\s"'<>?]+)\?[^\s"'<>]*`)

// redactURLs drops the queries of the URLs in msg: containerd and net/http
// print request URLs whole, upload session state and redirect signatures
// included.
func redactURLs(msg string) string {
	return urlWithQuery.ReplaceAllString(msg, "$1")
}

func isTLS(err error) bool {
	var (
		unknownCA  x509.UnknownAuthorityError
		hostname   x509.HostnameError
		invalid    x509.CertificateInvalidError
		verify     *tls.CertificateVerificationError
		record     tls.RecordHeaderError
		tlsAlert   tls.AlertError
		eCHRejects *tls.ECHRejectionError
	)
	if errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verify) || errors.As(err, &record) || errors.As(err, &tlsAlert) || errors.As(err, &eCHRejects) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "x509: ") || strings.Contains(msg, "tls: ") ||
		strings.Contains(msg, "server gave HTTP response to HTTPS client")
}

func isUnreachable(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func isAuth(err error) bool {
	if errors.Is(err, docker.ErrInvalidAuthorization) || errdefs.IsUnauthorized(err) || errdefs.IsPermissionDenied(err) {
		return true
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.StatusCode == http.StatusUnauthorized || se.StatusCode == http.StatusForbidden
	}
	var st remoteerrors.ErrUnexpectedStatus
	if errors.As(err, &st) {
		return st.StatusCode == http.StatusUnauthorized || st.StatusCode == http.StatusForbidden
	}
	msg := err.Error()
	return strings.Contains(msg, "401 Unauthorized") || strings.Contains(msg, "403 Forbidden")
}

func isNotFound(err error) bool {
	if errdefs.IsNotFound(err) {
		return true
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.StatusCode == http.StatusNotFound
	}
	var st remoteerrors.ErrUnexpectedStatus
	return errors.As(err, &st) && st.StatusCode == http.StatusNotFound
}

// credentialsSource says where credentials for host were looked for and
// whether any were there.
func credentialsSource(host string) string {
	dir := defaultConfigDir()
	path := filepath.Join(dir, dockerconfig.ConfigFileName)
	if _, err := os.Stat(path); err != nil {
		return fmt.Sprintf("no credentials found (%s does not exist)", path)
	}
	cf, err := dockerconfig.Load(dir)
	if err != nil {
		return fmt.Sprintf("credentials file %s is unreadable (%v)", path, err)
	}
	ac, err := cf.GetAuthConfig(authKey(host))
	if err != nil || (ac.Username == "" && ac.IdentityToken == "") {
		return fmt.Sprintf("no credentials for %s in %s", host, path)
	}
	return fmt.Sprintf("the credentials for %s from %s were refused", host, path)
}
