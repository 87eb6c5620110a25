//go:build unix

package storage

import "syscall"

// ftruncate cuts the file open as fd to size.
func ftruncate(fd uintptr, size int64) error { return syscall.Ftruncate(int(fd), size) }
