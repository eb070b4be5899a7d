package serve

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// htpasswd is a set of users and bcrypt hashes, as distribution and
// Debian's docker-registry read them (htpasswd -B).
type htpasswd struct {
	hashes map[string][]byte
	// ok remembers a hash of the last password that matched for each
	// user: bcrypt costs tens of milliseconds by design, and a pull sends
	// the same credentials with every one of its requests.
	mu sync.Mutex
	ok map[string][32]byte
}

func loadHtpasswd(path string) (*htpasswd, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("htpasswd file: %w", err)
	}
	defer f.Close()
	h := &htpasswd{hashes: map[string][]byte{}, ok: map[string][32]byte{}}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, found := strings.Cut(line, ":")
		if !found || user == "" {
			return nil, fmt.Errorf("htpasswd file %s line %d: want USER:HASH", path, n)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("htpasswd file %s line %d (user %s): not a bcrypt hash; only bcrypt is accepted: make it with htpasswd -B", path, n, user)
		}
		h.hashes[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("htpasswd file %s: %w", path, err)
	}
	if len(h.hashes) == 0 {
		return nil, fmt.Errorf("htpasswd file %s lists no user: nobody could log in", path)
	}
	return h, nil
}

func (h *htpasswd) check(user, password string) bool {
	hash, ok := h.hashes[user]
	if !ok {
		return false
	}
	sum := sha256.Sum256([]byte(password))
	h.mu.Lock()
	last, seen := h.ok[user]
	h.mu.Unlock()
	if seen && subtle.ConstantTimeCompare(last[:], sum[:]) == 1 {
		return true
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return false
	}
	h.mu.Lock()
	h.ok[user] = sum
	h.mu.Unlock()
	return true
}

// requireAuth lets through requests with a user and password of h, and
// answers the others 401 with a Basic challenge.
func requireAuth(h *htpasswd, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, password, ok := r.BasicAuth(); ok && h.check(user, password) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="bundle serve"`)
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		ociError(w, http.StatusUnauthorized, codeUnauthorized, "authentication required: log in with a user of the registry's htpasswd file")
	})
}
