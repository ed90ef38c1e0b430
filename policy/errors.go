package policy

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Pos is a place in a policy file. Line and Column start at 1; zero means
// unknown (the whole file).
type Pos struct {
	File   string `json:"file"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
}

func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Column == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// FieldError is one problem in a policy repository: where it is, which
// field (a path such as spec.clusterWide.deployment.privileged.action),
// and what is wrong.
type FieldError struct {
	Pos   Pos    `json:"pos"`
	Field string `json:"field,omitempty"`
	Msg   string `json:"message"`
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", e.Pos, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.Pos, e.Field, e.Msg)
}

// ErrorList is every problem found in a repository, sorted by place.
// Load returns one (as error) when the repository is invalid.
type ErrorList []*FieldError

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

func (l ErrorList) sort() {
	slices.SortStableFunc(l, func(a, b *FieldError) int {
		return cmp.Or(
			cmp.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Column, b.Pos.Column),
			cmp.Compare(a.Field, b.Field),
			cmp.Compare(a.Msg, b.Msg),
		)
	})
}

// Source is where a document was read: its file and the position of every
// field, so that validation after decoding still points at the YAML.
type Source struct {
	File string
	// Index is the document's index within its file (0-based).
	Index     int
	positions map[string]Pos
	docPos    Pos
}

// Pos returns the position of a field path, or of its closest ancestor
// that has one.
func (s Source) Pos(path string) Pos {
	for {
		if p, ok := s.positions[path]; ok {
			return p
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return s.docPos
		}
		path = path[:i]
	}
}

// dedupe drops an error that repeats the message of an earlier error at
// the same place: a rule block shared through a YAML anchor is validated
// once per definition that merges it, but it has one place to fix.
func (l ErrorList) dedupe() ErrorList {
	seen := map[string]bool{}
	out := l[:0]
	for _, e := range l {
		key := fmt.Sprintf("%s\x00%s", e.Pos, e.Msg)
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, e)
	}
	return out
}
