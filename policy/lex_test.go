package policy

import (
	"reflect"
	"testing"

	"github.com/google/shlex"
)

func TestTokenize(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []token
	}{
		{"", nil},
		{"   \t ", nil},
		{"allow read /a", []token{{"allow", 1}, {"read", 7}, {"/a", 12}}},
		{"  deny\t/a  # c", []token{{"deny", 3}, {"/a", 8}}},
		{"#x", nil},
		{"a#b c", []token{{"a#b", 1}, {"c", 5}}},
		{`a "b c" 'd e' f\ g`, []token{{"a", 1}, {"b c", 3}, {"d e", 9}, {"f g", 15}}},
		{`x"y"z 'a'b`, []token{{"xyz", 1}, {"ab", 7}}},
		{`"" ''`, []token{{"", 1}, {"", 4}}},
		{`"a\"b" \#c`, []token{{`a"b`, 1}, {"#c", 8}}},
		{"é x", []token{{"é", 1}, {"x", 4}}},
		{"a\r", []token{{"a", 1}}},
	} {
		got, lerr := tokenize(tc.line)
		if lerr != nil {
			t.Errorf("tokenize(%q): %v", tc.line, lerr.msg)
			continue
		}
		if len(got) == 0 && len(tc.want) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("tokenize(%q) = %+v, want %+v", tc.line, got, tc.want)
		}
	}
}

func TestTokenizeErrors(t *testing.T) {
	for _, tc := range []struct {
		line string
		col  int
	}{
		{`a 'b`, 3},
		{`a "b`, 3},
		{`a "b\"`, 3},
		{`ab"c d`, 3},
		{`a \`, 3},
		{`a b\`, 4},
	} {
		_, lerr := tokenize(tc.line)
		if lerr == nil || lerr.col != tc.col {
			t.Errorf("tokenize(%q) error %+v, want column %d", tc.line, lerr, tc.col)
		}
		if _, err := shlex.Split(tc.line); err == nil {
			t.Errorf("shlex accepts %q", tc.line)
		}
	}
}

func TestCheckLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		col  int
	}{
		{"ok é", 0},
		{"a\x00", 2},
		{"ab\xff", 3},
		{"é\xc3", 3},
	} {
		lerr := checkLine(tc.line)
		col := 0
		if lerr != nil {
			col = lerr.col
		}
		if col != tc.col {
			t.Errorf("checkLine(%q) column %d, want %d", tc.line, col, tc.col)
		}
	}
}

func TestQuote(t *testing.T) {
	for _, s := range []string{"", "a", "/a b", "it's", `a"b`, `a\b`, "#x", "a#x", "\t", "''", "é", "a\rb", "$$"} {
		q := quote(s)
		words, err := shlex.Split(q)
		if err != nil || len(words) != 1 || words[0] != s {
			t.Errorf("quote(%q) = %s, which splits into %q (%v)", s, q, words, err)
		}
	}
	if got := quote("/usr/lib/**"); got != "/usr/lib/**" {
		t.Errorf("quote quotes a plain word: %s", got)
	}
}
