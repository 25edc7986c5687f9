package policy

import (
	"fmt"
	"strings"
)

// A Right is a set of access rights a rule grants or denies. The zero Right
// is the empty set.
type Right uint8

// The rights of the policy language, in their canonical order.
const (
	// Read allows opening for reading (and listing a directory). It implies
	// Stat in allow rules.
	Read Right = 1 << iota
	// Write allows opening for writing. It implies Stat in allow rules.
	Write
	// Create allows creating or truncating a file. It implies nothing else.
	Create
	// Exec allows executing a file.
	Exec
	// Stat allows metadata only: stat, access and readlink.
	Stat
)

// AllRights is every right; it is what a deny rule without rights carries.
const AllRights = Read | Write | Create | Exec | Stat

// numRights is the number of right bits.
const numRights = 5

var rightNames = [numRights]string{"read", "write", "create", "exec", "stat"}

// validRights lists the right names for error messages.
const validRights = "read, write, create, exec, stat"

// String returns the rights as a comma-separated list in the order read,
// write, create, exec, stat ("read,write,stat"), or "none" for the empty set.
// Bits outside [AllRights] are printed as a hexadecimal remainder.
func (r Right) String() string {
	if r == 0 {
		return "none"
	}
	var b strings.Builder
	for i, name := range rightNames {
		if r&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(name)
		}
	}
	if rest := r &^ AllRights; rest != 0 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%#x", uint8(rest))
	}
	return b.String()
}

// ParseRights parses a comma-separated list of rights such as "read,write",
// the form rules use. Names may repeat; spaces are not allowed. An empty
// list, an empty element or an unknown name is an error that names the valid
// rights.
func ParseRights(s string) (Right, error) {
	if s == "" {
		return 0, fmt.Errorf("missing rights; valid rights: %s", validRights)
	}
	var r Right
	for elem := range strings.SplitSeq(s, ",") {
		if elem == "" {
			return 0, fmt.Errorf("empty right in %q; separate rights with commas and no spaces, e.g. read,write", s)
		}
		bit, ok := rightByName(elem)
		if !ok {
			return 0, fmt.Errorf("unknown right %q%s; valid rights: %s", elem, didYouMean(elem, rightNames[:]), validRights)
		}
		r |= bit
	}
	return r, nil
}

func rightByName(name string) (Right, bool) {
	for i, n := range rightNames {
		if n == name {
			return 1 << i, true
		}
	}
	return 0, false
}

// carried returns the rights a rule carries when matching: allow rules add
// Stat to Read and Write.
func carried(allow bool, r Right) Right {
	if allow && r&(Read|Write) != 0 {
		r |= Stat
	}
	return r
}
