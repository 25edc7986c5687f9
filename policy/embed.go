package policy

import _ "embed"

// defaultPolicy is the built-in policy. The canonical file is
// policies/default.policy at the repository root; go:embed cannot reach
// outside the package directory, so this package keeps a byte-for-byte
// copy, and TestDefaultPolicyInSync fails when the two differ.
//
//go:generate cp ../policies/default.policy default.policy
//go:embed default.policy
var defaultPolicy []byte
