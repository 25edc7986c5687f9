package policy_test

import (
	"fmt"
	"log"

	"github.com/seed-025014a4/sandbox-exec/policy"
)

func ExampleDefault() {
	p, err := policy.Default(policy.Defines{"CWD": "/home/user/project"})
	if err != nil {
		log.Fatal(err)
	}
	m := p.Matcher()
	for _, path := range []string{"/usr/lib/os-release", "/etc/shadow", "/home/user/project/main.go"} {
		v := m.Decide(path, policy.Read)
		fmt.Printf("%s: allowed=%v (%s)\n", path, v.Allowed, m.Where(v))
	}
	// Output:
	// /usr/lib/os-release: allowed=true (default.policy:20)
	// /etc/shadow: allowed=false (default.policy:34)
	// /home/user/project/main.go: allowed=true (default.policy:26)
}

func ExampleParse() {
	src := `
version 1
define PROFILE=/tmp/renderer
allow read /usr/share/fonts/**
allow read,write,create ${PROFILE}/**
deny /usr/share/fonts/private/**
net none
`
	p, err := policy.Parse("renderer.policy", []byte(src), policy.Defines{"PROFILE": "/run/user/1000/r"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(p)
	// Output:
	// version 1
	// allow read /usr/share/fonts/**
	// allow read,write,create /run/user/1000/r/**
	// deny /usr/share/fonts/private/**
	// net none
}

func ExampleParse_errors() {
	src := "allow raed /usr/**\nallow read lib/**\n"
	_, err := policy.Parse("bad.policy", []byte(src), nil)
	fmt.Println(err)
	// Output:
	// bad.policy:1:7: unknown right "raed" (did you mean "read"?); valid rights: read, write, create, exec, stat
	// bad.policy:2:12: pattern "lib/**" is not absolute; patterns must start with / (for a path under the current directory write ${CWD}/lib/**)
}

func ExampleMatcher_Explain() {
	p, err := policy.Parse("app.policy", []byte("allow read /etc/**\ndeny /etc/shadow\n"), nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(p.Matcher().Explain("/etc/shadow", policy.Read))
	// Output:
	// /etc/shadow read: denied by app.policy:2
	//   matching rules, in order (for each right the last rule carrying it decides):
	//     app.policy:1:12  allow read /etc/**  carries read,stat
	//     app.policy:2:6   deny /etc/shadow    carries read,write,create,exec,stat
}
