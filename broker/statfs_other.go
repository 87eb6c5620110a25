//go:build !(linux || darwin)

package broker

import "errors"

// freeBytes is not available on this platform.
func freeBytes(string) (uint64, error) { return 0, errors.ErrUnsupported }
