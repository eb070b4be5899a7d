package parts

import (
	"fmt"
	"strings"
)

// States of a part.
const (
	StateOK        = "ok"        // matches FILE.sha256
	StateUnchecked = "unchecked" // no FILE.sha256 lists it
	StateMissing   = "missing"
	StateDamaged   = "damaged" // wrong size or wrong sha256
	StateRebuilt   = "rebuilt" // rebuilt from parity
)

// PartStatus is what was found of one part.
type PartStatus struct {
	Name    string `json:"name"`
	Parity  bool   `json:"parity,omitempty"`
	Size    int64  `json:"size"`   // as it should be, or as found without a sidecar
	Offset  int64  `json:"offset"` // in the archive, for a data part
	State   string `json:"state"`
	Problem string `json:"problem,omitempty"`

	path string
	want string // sha256 from the sidecar
}

// bad says the part cannot be read as it is.
func (p PartStatus) bad() bool { return p.State == StateMissing || p.State == StateDamaged }

// Status is what was found of a set of parts.
type Status struct {
	Base    string       `json:"base"`
	Sidecar bool         `json:"sidecar"` // FILE.sha256 lists the parts
	Layout  *Layout      `json:"layout,omitempty"`
	Parts   []PartStatus `json:"parts"`
}

// Bad lists the parts missing or damaged.
func (s *Status) Bad() []PartStatus {
	var out []PartStatus
	for _, p := range s.Parts {
		if p.bad() {
			out = append(out, p)
		}
	}
	return out
}

// Rebuilt lists the parts rebuilt from parity.
func (s *Status) Rebuilt() []string {
	var out []string
	for _, p := range s.Parts {
		if p.State == StateRebuilt {
			out = append(out, p.Name)
		}
	}
	return out
}

// beyondParity is a *TooDamagedError when the bad parts are more than
// parity rebuilds, nil otherwise.
func (s *Status) beyondParity(bad []PartStatus) error {
	parity := 0
	if s.Layout != nil {
		parity = s.Layout.Parity
	}
	if len(bad) <= parity {
		return nil
	}
	return &TooDamagedError{Base: s.Base, Bad: bad, Parity: parity, Status: s}
}

// CheckParity is what Open would refuse: a *TooDamagedError when more
// parts are missing or damaged than parity rebuilds.
func (s *Status) CheckParity() error { return s.beyondParity(s.Bad()) }

// TooDamagedError says more parts are lost than parity can rebuild.
type TooDamagedError struct {
	Base   string
	Bad    []PartStatus
	Parity int
	// Status is every part as found, for OpenLost.
	Status *Status
	// Needed names the images whose blobs lie in the bad parts, when the
	// rest of the archive could be listed to tell.
	Needed []string
}

func (e *TooDamagedError) Error() string {
	var names []string
	for _, p := range e.Bad {
		names = append(names, describe(p))
	}
	msg := fmt.Sprintf("bundle %s: %d part(s) missing or damaged: %s", e.Base, len(e.Bad), strings.Join(names, "; "))
	if len(e.Needed) > 0 {
		msg += fmt.Sprintf("; they hold blobs of %s", strings.Join(e.Needed, ", "))
	}
	if e.Parity == 0 {
		return msg + ": it has no parity parts to rebuild them; copy those parts again from the source"
	}
	more := len(e.Bad) - e.Parity
	return fmt.Sprintf("%s: its %d parity part(s) rebuild at most %d, %d more parity part(s) would have been needed (export with --parity %d); copy %d of them again from the source",
		msg, e.Parity, e.Parity, more, len(e.Bad), more)
}

func describe(p PartStatus) string {
	what := "parity"
	if !p.Parity {
		what = fmt.Sprintf("archive bytes %d to %d", p.Offset, p.Offset+p.Size)
	}
	return fmt.Sprintf("%s %s (%s, holding %s)", p.Name, p.State, p.Problem, what)
}
