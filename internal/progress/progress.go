// Package progress carries transfer events from export and import to
// whatever shows them: bars on a terminal, periodic lines, or nothing.
package progress

// Tracker receives transfer events. Implementations must be safe for
// concurrent use: every worker reports on its own.
type Tracker interface {
	// Start announces one transfer (a blob or manifest) of total bytes.
	Start(id, name string, total int64)
	// Add reports n more bytes of transfer id.
	Add(id string, n int64)
	// Done ends transfer id; err is nil on success. skipped means no bytes moved
	// (already present, mounted, cached).
	Done(id string, skipped bool, err error)
}

// Discard is a Tracker that shows nothing.
type Discard struct{}

func (Discard) Start(string, string, int64) {}
func (Discard) Add(string, int64)           {}
func (Discard) Done(string, bool, error)    {}
