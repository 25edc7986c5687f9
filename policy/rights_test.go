package policy

import (
	"strings"
	"testing"
)

func TestRightString(t *testing.T) {
	for _, tc := range []struct {
		r    Right
		want string
	}{
		{0, "none"},
		{Read, "read"},
		{Stat | Read | Write, "read,write,stat"},
		{AllRights, "read,write,create,exec,stat"},
		{Exec | Create, "create,exec"},
		{Read | 1<<6, "read,0x40"},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("Right(%#x).String() = %q, want %q", uint8(tc.r), got, tc.want)
		}
	}
}

func TestParseRights(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want Right
		err  string
	}{
		{"read", Read, ""},
		{"stat,read", Read | Stat, ""},
		{"read,write,create,exec,stat", AllRights, ""},
		{"read,read", Read, ""},
		{"", 0, "missing rights; valid rights: read, write, create, exec, stat"},
		{"read,", 0, `empty right in "read,"`},
		{",read", 0, "empty right"},
		{"raed", 0, `unknown right "raed" (did you mean "read"?); valid rights: read, write, create, exec, stat`},
		{"READ", 0, `unknown right "READ" (did you mean "read"?)`},
		{"all", 0, `unknown right "all"; valid rights`},
	} {
		got, err := ParseRights(tc.s)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseRights(%q) error %v, want %q", tc.s, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRights(%q) = %s, %v; want %s", tc.s, got, err, tc.want)
		}
	}
	for r := Right(1); r <= AllRights; r++ {
		if got, err := ParseRights(r.String()); err != nil || got != r {
			t.Errorf("ParseRights(%q) = %s, %v", r.String(), got, err)
		}
	}
}

func TestErrnos(t *testing.T) {
	for name, n := range map[string]int{"EPERM": 1, "ENOENT": 2, "EACCES": 13, "ENOSYS": 38, "EWOULDBLOCK": 11, "ENOTSUP": 95, "EHWPOISON": 133} {
		if got, err := ParseErrno(name); err != nil || got != n {
			t.Errorf("ParseErrno(%s) = %d, %v; want %d", name, got, err, n)
		}
	}
	if got := ErrnoName(11); got != "EAGAIN" {
		t.Errorf("ErrnoName(11) = %s", got)
	}
	if got := ErrnoName(41); got != "41" {
		t.Errorf("ErrnoName(41) = %s", got)
	}
	if _, err := ParseErrno("13"); err == nil || !strings.Contains(err.Error(), "must be given by name") {
		t.Errorf("ParseErrno(13): %v", err)
	}
}

func TestLimitValues(t *testing.T) {
	size := limitTable["fsize"]
	for _, tc := range []struct {
		s    string
		want uint64
	}{
		{"0", 0}, {"1024", 1024}, {"1K", 1 << 10}, {"1KiB", 1 << 10}, {"512M", 512 << 20}, {"512MiB", 512 << 20},
		{"4G", 4 << 30}, {"4GiB", 4 << 30}, {"2T", 2 << 40}, {"2TiB", 2 << 40}, {"unlimited", Unlimited},
	} {
		if got, err := parseLimitValue("fsize", size, tc.s); err != nil || got != tc.want {
			t.Errorf("parseLimitValue(%q) = %d, %v; want %d", tc.s, got, err, tc.want)
		}
	}
	for _, v := range []uint64{0, 1, 1023, 1024, 1536, 1 << 20, 3 << 30, 5 << 40, 1 << 50, Unlimited} {
		s := formatLimitValue(limitSize, v)
		if got, err := parseLimitValue("fsize", size, s); err != nil || got != v {
			t.Errorf("format %d = %q, parses to %d, %v", v, s, got, err)
		}
	}
	if got := formatLimitValue(limitSize, 1<<30); got != "1GiB" {
		t.Errorf("formatLimitValue(1GiB) = %s", got)
	}
	if got := formatLimitValue(limitCount, 1<<10); got != "1024" {
		t.Errorf("formatLimitValue(count 1024) = %s", got)
	}
}

func TestKnownFeatures(t *testing.T) {
	for _, f := range KnownFeatures() {
		if _, err := parseRequirement(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if r, err := parseRequirement("landlock>=6"); err != nil || r.MinVersion != 6 || r.String() != "landlock>=6" {
		t.Errorf("landlock>=6: %+v, %v", r, err)
	}
}
