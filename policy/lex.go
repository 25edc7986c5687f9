package policy

import (
	"strings"
	"unicode/utf8"

	"github.com/google/shlex"
)

// A token is one shell word of a line and the 1-based byte column where it
// starts in the raw line.
type token struct {
	val string
	col int
}

// A lexError is a tokenising problem at a 1-based byte column.
type lexError struct {
	col int
	msg string
}

// checkLine rejects a raw line that holds a NUL byte or invalid UTF-8: shlex
// would silently turn invalid bytes into U+FFFD.
func checkLine(raw string) *lexError {
	if i := strings.IndexByte(raw, 0); i >= 0 {
		return &lexError{i + 1, "NUL byte; policy files are text"}
	}
	for i := 0; i < len(raw); {
		r, w := utf8.DecodeRuneInString(raw[i:])
		if r == utf8.RuneError && w == 1 {
			return &lexError{i + 1, "invalid UTF-8; policy files must be UTF-8 text"}
		}
		i += w
	}
	return nil
}

// tokenize splits one line (no newline, already checked by checkLine) into
// words with github.com/google/shlex. shlex reports no positions, so the
// columns come from scanLine, which runs the same state machine over the raw
// bytes.
func tokenize(line string) ([]token, *lexError) {
	if plain(line) {
		return plainTokens(line), nil
	}
	cols, lerr := scanLine(line)
	words, err := shlex.Split(line)
	if lerr != nil {
		return nil, lerr
	}
	if err != nil {
		// scanLine and shlex disagree; should not happen (FuzzParse checks).
		return nil, &lexError{1, err.Error()}
	}
	toks := make([]token, len(words))
	for i, w := range words {
		col := 1
		if len(cols) == len(words) {
			col = cols[i]
		}
		toks[i] = token{w, col}
	}
	return toks, nil
}

// plain reports whether line holds none of shlex's quote and escape
// characters. Its words are then the runs of bytes between shlex's spaces
// (" \t\r\n") up to a '#' that starts a word (a comment, as in shlex; a
// '#' inside a word is part of it), which plainTokens finds without a
// lexer: most policy lines are like that, and shlex.Split costs about
// 2.5 µs a line, nearly all of a policy's parse (sandbox-exec parses its
// policy in two process images per start).
func plain(line string) bool { return !strings.ContainsAny(line, "\"'\\") }

// plainTokens splits a plain line into words at shlex's spaces.
func plainTokens(line string) []token {
	var toks []token
	for i := 0; i < len(line); {
		if isSpace(line[i]) {
			i++
			continue
		}
		if line[i] == '#' {
			break // a comment to the end of the line
		}
		j := i
		for j < len(line) && !isSpace(line[j]) {
			j++
		}
		toks = append(toks, token{line[i:j], i + 1})
		i = j
	}
	return toks
}

// isSpace is shlex's space class.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// scanLine returns the 1-based byte column of the start of every word shlex
// finds in line, or the position of an unterminated quote or a trailing
// backslash. It mirrors shlex's classes: space is " \t\r\n", `"` quotes with
// escapes, `'` quotes without, `\` escapes the next rune, and `#` starts a
// comment only where a word could start.
func scanLine(line string) ([]int, *lexError) {
	const (
		start = iota
		word
		escape
		dquote
		dquoteEscape
		squote
	)
	var cols []int
	state, open := start, 0
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch state {
		case start:
			switch c {
			case ' ', '\t', '\r', '\n':
			case '#':
				return cols, nil
			case '"':
				cols = append(cols, i+1)
				state, open = dquote, i
			case '\'':
				cols = append(cols, i+1)
				state, open = squote, i
			case '\\':
				cols = append(cols, i+1)
				state, open = escape, i
			default:
				cols = append(cols, i+1)
				state = word
			}
		case word:
			switch c {
			case ' ', '\t', '\r', '\n':
				state = start
			case '"':
				state, open = dquote, i
			case '\'':
				state, open = squote, i
			case '\\':
				state, open = escape, i
			}
		case escape:
			i += runeLen(line[i:]) - 1
			state = word
		case dquote:
			switch c {
			case '"':
				state = word
			case '\\':
				state = dquoteEscape
			}
		case dquoteEscape:
			i += runeLen(line[i:]) - 1
			state = dquote
		case squote:
			if c == '\'' {
				state = word
			}
		}
	}
	switch state {
	case escape:
		return nil, &lexError{open + 1, `line ends with a backslash; a directive cannot continue on the next line`}
	case dquote, dquoteEscape:
		return nil, &lexError{open + 1, `unterminated "..." quote; quotes must close on the same line`}
	case squote:
		return nil, &lexError{open + 1, `unterminated '...' quote; quotes must close on the same line`}
	}
	return cols, nil
}

func runeLen(s string) int {
	_, w := utf8.DecodeRuneInString(s)
	return w
}

// quote returns s as one word that shlex splits back into exactly s: bare
// when that is unambiguous, otherwise in single quotes, where a single quote
// of s ends the quoting, is written escaped and starts it again:
//
//	/it's  ->  '/it'\''s'
func quote(s string) string {
	if s != "" && s[0] != '#' && !strings.ContainsAny(s, " \t\r\n\"'\\") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
