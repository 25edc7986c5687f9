package policy

import (
	"strings"
	"testing"
)

func TestMatcherWith(t *testing.T) {
	p, err := Parse("shared.policy", []byte("version 1\nallow read /usr/**\ndeny /home/**\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	base := p.Matcher()
	m, err := base.With(Grant{Pattern: "/home/u/doc.pdf", Rights: Read})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		m     *Matcher
		path  string
		need  Right
		allow bool
		where string
	}{
		{base, "/home/u/doc.pdf", Read, false, "shared.policy:3"},
		{m, "/home/u/doc.pdf", Read, true, "grant:1"},
		{m, "/home/u/doc.pdf", Write, false, "shared.policy:3"},
		{m, "/home/u/other.pdf", Read, false, "shared.policy:3"},
		{m, "/home/u", Stat, true, "grant:1"}, // the way to the document
		{m, "/usr/lib/x", Read, true, "shared.policy:2"},
	} {
		v := c.m.Decide(c.path, c.need)
		if v.Allowed != c.allow || c.m.Where(v) != c.where {
			t.Errorf("%s %s: allowed %v by %s, want %v by %s", c.path, c.need, v.Allowed, c.m.Where(v), c.allow, c.where)
		}
	}
	if n := testing.AllocsPerRun(100, func() { m.Decide("/home/u/doc.pdf", Read) }); n != 0 {
		t.Errorf("Decide with grants allocates %v times", n)
	}
	for _, g := range []Grant{{Pattern: "doc.pdf", Rights: Read}, {Pattern: "/a/../b", Rights: Read}, {Pattern: "/x", Rights: 0}} {
		if _, err := base.With(g); err == nil || !strings.Contains(err.Error(), "grant 1") {
			t.Errorf("With(%+v) = %v, want an error naming the grant", g, err)
		}
	}
}
