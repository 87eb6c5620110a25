//go:build !unix

package storage

import "errors"

func dupCloexec(uintptr) (int, error) { return -1, errors.New("storage: no file ranges here") }

// Close closes the range's descriptor.
func (r FileRange) Close() error { return nil }
