//go:build linux

package sys

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Retry calls fn until it returns something other than EINTR.
func Retry(fn func() error) error {
	for {
		err := fn()
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// RetryValue is Retry for calls that also return a value.
func RetryValue[T any](fn func() (T, error)) (T, error) {
	for {
		v, err := fn()
		if !errors.Is(err, unix.EINTR) {
			return v, err
		}
	}
}
