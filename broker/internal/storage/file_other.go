//go:build !unix

package storage

// ftruncate cannot cut a file by descriptor on this system.
func ftruncate(uintptr, int64) error { return errCannotTruncate }
