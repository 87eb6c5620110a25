//go:build linux && (amd64 || arm64)

package storage

import "syscall"

// dropPageCache advises the kernel that the file's bytes in [off,
// off+length) will not be read soon (POSIX_FADV_DONTNEED): it drops their
// clean pages from the page cache. Whole pages only; dirty ones stay.
func dropPageCache(fd uintptr, off, length int64) error {
	const fadvDontNeed = 4
	_, _, errno := syscall.Syscall6(syscall.SYS_FADVISE64, fd, uintptr(off), uintptr(length), fadvDontNeed, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
