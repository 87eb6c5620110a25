//go:build linux && (amd64 || arm64)

package storage

import "syscall"

// startWriteback asks the kernel to start writing the file's dirty pages
// in [off, off+length) to the device now (sync_file_range with
// SYNC_FILE_RANGE_WRITE) and returns without waiting for them. It is a
// hint that makes nothing durable: only the group commit's SyncData does.
func startWriteback(fd uintptr, off, length int64) error {
	const syncFileRangeWrite = 2
	_, _, errno := syscall.Syscall6(syscall.SYS_SYNC_FILE_RANGE, fd, uintptr(off), uintptr(length), syncFileRangeWrite, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
