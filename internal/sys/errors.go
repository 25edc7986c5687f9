package sys

import (
	"errors"
	"fmt"
)

// ErrNotSupported is wrapped by every error that means "this kernel lacks
// the feature". Check for it with errors.Is.
var ErrNotSupported = errors.New("not supported")

// UnsupportedFeatureError names a missing kernel feature and the first
// Linux version that has it. It matches ErrNotSupported.
type UnsupportedFeatureError struct {
	// Name is the feature as users write it in `require` lines.
	Name string
	// MinimumVersion is the first Linux release with the feature, e.g. "5.14".
	MinimumVersion string
	// Err is the error of the probe, if any.
	Err error
}

func (e *UnsupportedFeatureError) Error() string {
	msg := fmt.Sprintf("%s not supported by this kernel (requires Linux %s)", e.Name, e.MinimumVersion)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is makes UnsupportedFeatureError match ErrNotSupported.
func (e *UnsupportedFeatureError) Is(target error) bool { return target == ErrNotSupported }

// Unwrap returns the probe's error.
func (e *UnsupportedFeatureError) Unwrap() error { return e.Err }
