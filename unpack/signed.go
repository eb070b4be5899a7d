package unpack

import (
	"context"
	"fmt"

	"github.com/bundle-dev/bundle/verify"
)

// authenticate checks a signed bundle before Import does anything else:
// with a key, a missing or foreign signature, or bytes that do not match
// the signed FILE.sha256, stop the import with nothing pushed.
func authenticate(ctx context.Context, file string, opts Options) error {
	if opts.Key == "" {
		return nil
	}
	if err := verify.Authenticate(ctx, file, verify.Options{Key: opts.Key}); err != nil {
		return fmt.Errorf("bundle %s refused, nothing pushed: %w", file, err)
	}
	return nil
}
