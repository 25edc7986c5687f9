package policy

import (
	"strconv"
	"strings"
)

// A Position is a place in a policy file: a 1-based line and a 1-based byte
// column. Col is 0 when the position names a whole line, Line is 0 when it
// names a whole file.
type Position struct {
	File      string
	Line, Col int
}

// String returns "file:line:col", "file:line" when Col is 0 and "file" when
// Line is 0.
func (p Position) String() string {
	s := p.File
	if p.Line > 0 {
		s += ":" + strconv.Itoa(p.Line)
		if p.Col > 0 {
			s += ":" + strconv.Itoa(p.Col)
		}
	}
	return s
}

// line returns the position without its column ("file:line").
func (p Position) line() Position {
	p.Col = 0
	return p
}

// An Error is one problem found while parsing a policy.
type Error struct {
	// Pos is where the problem is: the offending token's column, or the
	// column of the directive when an argument is missing.
	Pos Position
	// Msg says what is wrong and what would be valid.
	Msg string
	// Chain lists the include directives that led to Pos's file, innermost
	// first; it is empty for the top-level file.
	Chain []Position
	// Err is the underlying error, if any (for example the *fs.PathError of
	// an include that could not be read).
	Err error
}

// Error returns "FILE:LINE:COL: message", followed by one
// "\n\tincluded from FILE:LINE" line per element of Chain.
func (e Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Pos.String())
	b.WriteString(": ")
	b.WriteString(e.Msg)
	for _, p := range e.Chain {
		b.WriteString("\n\tincluded from ")
		b.WriteString(p.line().String())
	}
	return b.String()
}

// Unwrap returns the underlying error, or nil.
func (e Error) Unwrap() error { return e.Err }

// MaxErrors is the number of errors a parse collects before it stops.
const MaxErrors = 20

// A ParseError is returned by [Parse], [ParseFile] and [Default]: every
// problem found in the policy and the files it includes, in file order, at
// most [MaxErrors] of them.
type ParseError struct {
	Errors []Error
	// Truncated reports that parsing stopped after MaxErrors errors.
	Truncated bool
}

// Error joins the errors with newlines; when parsing stopped early a last
// line says so.
func (e *ParseError) Error() string {
	var b strings.Builder
	for i, err := range e.Errors {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(err.Error())
	}
	if e.Truncated {
		b.WriteString("\ntoo many errors; stopped after " + strconv.Itoa(MaxErrors))
	}
	return b.String()
}

// Unwrap returns the individual errors, so that errors.Is and errors.As see
// each of them (for example [io/fs.ErrNotExist] of a missing include).
func (e *ParseError) Unwrap() []error {
	errs := make([]error, len(e.Errors))
	for i, err := range e.Errors {
		errs[i] = err
	}
	return errs
}
