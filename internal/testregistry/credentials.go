package testregistry

import (
	"path/filepath"
	"testing"
)

// SelfSigned writes into dir a self-signed certificate for 127.0.0.1 and
// localhost, which is its own CA, and its key: for other servers under
// test (bundle serve) to present what StartProcess's registry presents.
func SelfSigned(t testing.TB, dir string) (certPath, keyPath string) {
	t.Helper()
	return writeSelfSigned(t, dir)
}

// WriteHtpasswd writes into dir the bcrypt htpasswd file of a process
// started with Htpasswd (ProcessUser, ProcessPassword) and returns its path.
func WriteHtpasswd(t testing.TB, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "htpasswd")
	writeFile(t, p, []byte(ProcessUser+":"+processHtpasswd+"\n"))
	return p
}
