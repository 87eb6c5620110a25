//go:build unix

package storage

import "syscall"

// dupCloexec duplicates fd, close-on-exec.
func dupCloexec(fd uintptr) (int, error) {
	r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// Close closes the range's descriptor.
func (r FileRange) Close() error { return syscall.Close(r.FD) }
