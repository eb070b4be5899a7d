package testregistry

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"

	"github.com/bundle-dev/bundle/internal/graph"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fixReferrers corrects go-containerregistry's referrers support so that
// tests do not pass against a registry no real one resembles: it sends
// OCI-Subject on a manifest PUT with a subject, reports each referrer's
// artifactType from the manifest, and honours ?artifactType=.
func fixReferrers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case req.Method == http.MethodPut && kindOf(req.URL.Path) == "manifest":
			putWithSubject(h, w, req)
		case req.Method == http.MethodGet && kindOf(req.URL.Path) == "referrers":
			referrers(h, w, req)
		default:
			h.ServeHTTP(w, req)
		}
	})
}

func putWithSubject(h http.Handler, w http.ResponseWriter, req *http.Request) {
	body, err := graph.ReadAll(req.Body)
	if err != nil {
		http.Error(w, "manifest: "+err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	var m graph.Manifest
	if json.Unmarshal(body, &m) == nil && m.Subject != nil && m.Subject.Digest != "" {
		w = &headerOnSuccess{ResponseWriter: w, key: "OCI-Subject", value: m.Subject.Digest.String()}
	}
	h.ServeHTTP(w, req)
}

// headerOnSuccess adds a header only when the response is a success, as a
// registry sends OCI-Subject only for a stored manifest.
type headerOnSuccess struct {
	http.ResponseWriter
	key, value string
	wrote      bool
}

func (s *headerOnSuccess) WriteHeader(code int) {
	if !s.wrote && code >= 200 && code < 300 {
		s.Header().Set(s.key, s.value)
	}
	s.wrote = true
	s.ResponseWriter.WriteHeader(code)
}

func (s *headerOnSuccess) Write(p []byte) (int, error) {
	if !s.wrote {
		s.WriteHeader(http.StatusOK)
	}
	return s.ResponseWriter.Write(p)
}

func referrers(h http.Handler, w http.ResponseWriter, req *http.Request) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		copyRecorded(w, rec)
		return
	}
	var idx ocispec.Index
	if err := json.Unmarshal(rec.Body.Bytes(), &idx); err != nil {
		http.Error(w, "referrers index: "+err.Error(), http.StatusInternalServerError)
		return
	}
	name, _, _ := parsePath(req.URL.Path, "referrers")
	filter := req.URL.Query().Get("artifactType")
	kept := []ocispec.Descriptor{}
	for _, d := range idx.Manifests {
		d.ArtifactType = storedArtifactType(h, name, d.Digest, d.ArtifactType)
		if filter == "" || d.ArtifactType == filter {
			kept = append(kept, d)
		}
	}
	idx.Manifests = kept
	out, err := json.Marshal(idx)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// storedArtifactType reads a referrer from the wrapped registry and returns
// the artifact type the spec says a referrers list reports for it.
func storedArtifactType(h http.Handler, name string, d digest.Digest, reported string) string {
	req := httptest.NewRequest(http.MethodGet, "/v2/"+name+"/manifests/"+d.String(), nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return reported
	}
	m, err := graph.Parse(rec.Header().Get("Content-Type"), rec.Body.Bytes())
	if err != nil {
		return reported
	}
	return m.ArtifactTypeOf()
}

func copyRecorded(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// serveSchema1 answers GET and HEAD for the schema 1 manifests that the
// server itself refused (distribution v3 dropped schema 1), so that tests
// can still meet one as a client would on an old registry.
func (r *Registry) serveSchema1(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet || req.Method == http.MethodHead {
			if name, ref, ok := parsePath(req.URL.Path, "manifests"); ok {
				r.mu.Lock()
				m, found := r.schema1[name+"/"+ref]
				r.mu.Unlock()
				if found {
					w.Header().Set("Content-Type", m.mediaType)
					w.Header().Set("Content-Length", strconv.Itoa(len(m.data)))
					w.Header().Set("Docker-Content-Digest", digest.FromBytes(m.data).String())
					w.WriteHeader(http.StatusOK)
					if req.Method == http.MethodGet {
						_, _ = w.Write(m.data)
					}
					return
				}
			}
		}
		h.ServeHTTP(w, req)
	})
}
