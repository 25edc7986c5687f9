package policy

import (
	"errors"
	"fmt"
	"slices"
)

// A Grant gives one worker rights on one pattern, on top of a shared
// policy: a host hands a document to the worker that renders it.
type Grant struct {
	// Pattern is an absolute pattern, as in an allow rule (no variables).
	Pattern string
	// Rights are granted as by "allow RIGHTS PATTERN".
	Rights Right
}

// GrantFile is the file name that positions of grant rules carry, so an
// audit record shows a grant as "grant:N", N counting from 1.
const GrantFile = "grant"

// With returns a Matcher that decides like m with the grants appended as
// allow rules after all of m's rules: a grant wins wherever it matches,
// like any later rule, and nothing else changes. m is not modified and the
// policy is not parsed again; the result is as cheap to query as m.
func (m *Matcher) With(grants ...Grant) (*Matcher, error) {
	if len(grants) == 0 {
		return m, nil
	}
	rules := slices.Clone(m.rules)
	var errs []error
	for i, g := range grants {
		if g.Rights == 0 || g.Rights&^AllRights != 0 {
			errs = append(errs, fmt.Errorf("grant %d: invalid rights %s", i+1, g.Rights))
			continue
		}
		pat, msg := cleanPattern(g.Pattern)
		if msg != "" {
			errs = append(errs, fmt.Errorf("grant %d: %s", i+1, msg))
			continue
		}
		rules = append(rules, Rule{
			Allow:   true,
			Rights:  g.Rights,
			Pattern: pat,
			Pos:     Position{File: GrantFile, Line: i + 1},
		})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return newMatcher(rules), nil
}
