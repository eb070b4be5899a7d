package pack

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/plugins/content/local"
)

// CacheDir is the content cache export uses when none is given:
// <user cache dir>/bundle/content.
func CacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no user cache directory (%w): give one with --cache", err)
	}
	return filepath.Join(dir, "bundle", "content"), nil
}

// CacheStats is what the content cache holds.
type CacheStats struct {
	Dir     string    `json:"dir"`
	Blobs   int       `json:"blobs"`
	Bytes   int64     `json:"bytes"`
	Ingests int       `json:"partialIngests"` // interrupted fetches kept to resume
	Partial int64     `json:"partialBytes"`
	Oldest  time.Time `json:"oldest,omitzero"`
}

// CacheList sums up the cache in dir; a cache that does not exist is empty.
func CacheList(ctx context.Context, dir string) (*CacheStats, error) {
	st := &CacheStats{Dir: dir}
	store, err := openCache(dir)
	if store == nil || err != nil {
		return st, err
	}
	err = store.Walk(ctx, func(info content.Info) error {
		st.Blobs++
		st.Bytes += info.Size
		if st.Oldest.IsZero() || info.CreatedAt.Before(st.Oldest) {
			st.Oldest = info.CreatedAt
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the cache %s: %w", dir, err)
	}
	ingests, err := store.ListStatuses(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the cache %s: %w", dir, err)
	}
	for _, in := range ingests {
		st.Ingests++
		st.Partial += in.Offset
	}
	return st, nil
}

// CachePrune removes the blobs (and interrupted fetches) last used before
// now - olderThan; 0 removes everything. It returns what it removed.
func CachePrune(ctx context.Context, dir string, olderThan time.Duration) (*CacheStats, error) {
	removed := &CacheStats{Dir: dir}
	store, err := openCache(dir)
	if store == nil || err != nil {
		return removed, err
	}
	cutoff := time.Now().Add(-olderThan)
	var old []content.Info
	err = store.Walk(ctx, func(info content.Info) error {
		if olderThan == 0 || info.UpdatedAt.Before(cutoff) {
			old = append(old, info)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the cache %s: %w", dir, err)
	}
	for _, info := range old {
		if err := store.Delete(ctx, info.Digest); err != nil {
			return removed, fmt.Errorf("removing %s from the cache %s: %w", info.Digest, dir, err)
		}
		removed.Blobs++
		removed.Bytes += info.Size
	}
	ingests, err := store.ListStatuses(ctx)
	if err != nil {
		return removed, err
	}
	for _, in := range ingests {
		if olderThan == 0 || in.UpdatedAt.Before(cutoff) {
			if err := store.Abort(ctx, in.Ref); err == nil {
				removed.Ingests++
				removed.Partial += in.Offset
			}
		}
	}
	return removed, nil
}

// openCache opens the store in dir, or returns nil when there is none.
func openCache(dir string) (content.Store, error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	store, err := local.NewStore(dir)
	if err != nil {
		return nil, fmt.Errorf("opening the cache %s: %w", dir, err)
	}
	return store, nil
}
