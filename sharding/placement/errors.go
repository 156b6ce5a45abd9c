package placement

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

var (
	// ErrInvalid is wrapped by every *Error: the spec breaks a rule of the
	// file format or of placement.
	ErrInvalid = errors.New("placement: invalid spec")
	// ErrVersion means a catalog form was written in a format version this
	// build does not know, by a newer one. Nothing of it was read.
	ErrVersion = errors.New("placement: unknown catalog format version")
)

// Error is one broken rule, located by its path in the spec
// (databases.nova.tables.instances.locality) and, when the spec came from a
// file, by line and column.
type Error struct {
	Path   string
	Line   int // 1-based; 0 when the spec did not come from a file
	Column int
	Msg    string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("placement: ")
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *Error) Unwrap() error { return ErrInvalid }

// Errors is every broken rule found, in the order of the file (or of the
// paths, for a spec built in code). Parse and Validate return it so that an
// operator sees all mistakes at once.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.Is(err, ErrInvalid) and errors.As(err, **Error) see
// the individual errors.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// maxErrors bounds the errors reported for one spec: past a screenful they
// help nobody, and a hostile file could otherwise make millions.
const maxErrors = 100

// add appends e, or, past maxErrors, one last error saying that more were
// left out.
func (es Errors) add(e *Error) Errors {
	switch {
	case len(es) < maxErrors:
		return append(es, e)
	case len(es) == maxErrors:
		return append(es, &Error{Line: e.Line, Column: e.Column, Msg: fmt.Sprintf("more than %d errors; the rest are not reported", maxErrors)})
	}
	return es
}

// sortByPosition puts errors in the order of the file, which is how an
// operator reads them; the note that errors were left out stays last.
func (es Errors) sortByPosition() {
	body := es
	if len(es) > maxErrors {
		body = es[:maxErrors]
	}
	slices.SortStableFunc(body, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
}

// orNil keeps a nil Errors from becoming a non-nil error interface.
func (es Errors) orNil() error {
	if len(es) == 0 {
		return nil
	}
	return es
}
