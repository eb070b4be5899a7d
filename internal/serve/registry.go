package serve

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// registry is the read-only distribution API over a store.
type registry struct {
	st  *store
	log *slog.Logger
}

// route is a request path under /v2/ split into repository, kind and
// reference.
type route struct {
	repo, kind, ref string
}

// parseRoute reads /v2/<name>/<kind>/<ref> and /v2/<name>/tags/list. The
// last marker wins: a repository name may hold "manifests" but a reference
// holds no slash.
func parseRoute(p string) (route, bool) {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return route{}, false
	}
	if name, ok := strings.CutSuffix(rest, "/tags/list"); ok && name != "" {
		return route{repo: name, kind: "tags"}, true
	}
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 {
		return route{}, false
	}
	head, ref := rest[:i], rest[i+1:]
	j := strings.LastIndexByte(head, '/')
	if j <= 0 {
		return route{}, false
	}
	kind := head[j+1:]
	switch kind {
	case "manifests", "blobs", "referrers":
		return route{repo: head[:j], kind: kind, ref: ref}, ref != ""
	}
	return route{}, false
}

func (g *registry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		readOnly(w, r)
		return
	}
	switch r.URL.Path {
	case "/v2", "/v2/":
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{}"))
		return
	case "/v2/_catalog":
		g.catalog(w, r)
		return
	}
	rt, ok := parseRoute(r.URL.Path)
	if !ok {
		ociError(w, http.StatusNotFound, codeUnsupported, "no such endpoint of the distribution API")
		return
	}
	rp := g.st.repos[rt.repo]
	if rp == nil {
		ociError(w, http.StatusNotFound, codeNameUnknown, fmt.Sprintf("repository %s is not in the bundles served", rt.repo))
		return
	}
	switch rt.kind {
	case "tags":
		g.tags(w, r, rp)
	case "manifests":
		g.manifest(w, r, rp, rt.ref)
	case "blobs":
		g.blob(w, r, rp, rt.ref)
	case "referrers":
		g.referrers(w, r, rp, rt.ref)
	}
}

func (g *registry) manifest(w http.ResponseWriter, r *http.Request, rp *repo, ref string) {
	data, mt, d, ok := g.st.manifest(rp, ref)
	if !ok {
		ociError(w, http.StatusNotFound, codeManifestUnknown, fmt.Sprintf("manifest %s is not in repository %s", ref, rp.name))
		return
	}
	h := w.Header()
	h.Set("Content-Type", mt)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Etag", `"`+d.String()+`"`)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(data)
}

func (g *registry) tags(w http.ResponseWriter, r *http.Request, rp *repo) {
	page, next, ok := paginate(w, r, rp.tagNames)
	if !ok {
		return
	}
	if next != "" {
		w.Header().Set("Link", fmt.Sprintf(`</v2/%s/tags/list?%s>; rel="next"`, rp.name, next))
	}
	writeJSON(w, r, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{rp.name, page})
}

func (g *registry) catalog(w http.ResponseWriter, r *http.Request) {
	page, next, ok := paginate(w, r, g.st.names)
	if !ok {
		return
	}
	if next != "" {
		w.Header().Set("Link", fmt.Sprintf(`</v2/_catalog?%s>; rel="next"`, next))
	}
	writeJSON(w, r, "application/json", struct {
		Repositories []string `json:"repositories"`
	}{page})
}

// paginate applies the spec's n and last to a sorted list, and returns the
// query of the next page when there is one.
func paginate(w http.ResponseWriter, r *http.Request, all []string) ([]string, string, bool) {
	q := r.URL.Query()
	start := 0
	if last := q.Get("last"); last != "" {
		start, _ = slices.BinarySearch(all, last)
		if start < len(all) && all[start] == last {
			start++
		}
	}
	list := all[start:]
	if ns := q.Get("n"); ns != "" {
		n, err := strconv.Atoi(ns)
		if err != nil || n < 0 {
			ociError(w, http.StatusBadRequest, codePaginationInvalid, fmt.Sprintf("n=%q is not a count", ns))
			return nil, "", false
		}
		if n < len(list) {
			list = list[:n]
			if n > 0 {
				return list, url.Values{"n": {ns}, "last": {list[n-1]}}.Encode(), true
			}
		}
	}
	if list == nil {
		list = []string{}
	}
	return list, "", true
}

func (g *registry) referrers(w http.ResponseWriter, r *http.Request, rp *repo, ref string) {
	d, err := digest.Parse(ref)
	if err != nil {
		ociError(w, http.StatusBadRequest, codeDigestInvalid, fmt.Sprintf("%q is not a digest: %v", ref, err))
		return
	}
	at := r.URL.Query().Get("artifactType")
	data, err := referrersIndex(rp.referrers[d], at)
	if err != nil {
		ociError(w, http.StatusInternalServerError, codeUnknown, err.Error())
		return
	}
	if at != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(data)
}

func writeJSON(w http.ResponseWriter, r *http.Request, mt string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		ociError(w, http.StatusInternalServerError, codeUnknown, err.Error())
		return
	}
	w.Header().Set("Content-Type", mt)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(data)
}
