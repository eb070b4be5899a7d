package serve

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// OCI distribution error codes serve answers with.
const (
	codeBlobUnknown       = "BLOB_UNKNOWN"
	codeManifestUnknown   = "MANIFEST_UNKNOWN"
	codeNameUnknown       = "NAME_UNKNOWN"
	codeDigestInvalid     = "DIGEST_INVALID"
	codeUnsupported       = "UNSUPPORTED"
	codeUnauthorized      = "UNAUTHORIZED"
	codeRangeInvalid      = "RANGE_INVALID"
	codePaginationInvalid = "PAGINATION_NUMBER_INVALID"
	codeUnknown           = "UNKNOWN"
)

// ociError writes the distribution spec's error body.
func ociError(w http.ResponseWriter, status int, code, message string) {
	body, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"code": code, "message": message}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// readOnly answers every write.
func readOnly(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "GET, HEAD")
	ociError(w, http.StatusMethodNotAllowed, codeUnsupported,
		"the registry is read-only: bundle serve serves bundles as they are; "+r.Method+" is not allowed")
}
