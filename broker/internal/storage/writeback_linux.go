//go:build linux

package storage

import "golang.org/x/sys/unix"

// startWriteback asks the kernel to start writing the file's dirty pages
// in [off, off+length) to the device now (sync_file_range with
// SYNC_FILE_RANGE_WRITE) and returns without waiting for them. It is a
// hint that makes nothing durable: only the group commit's SyncData does.
//
// NB: unix.SyncFileRange, not a raw syscall: 32-bit arm and ppc64 take
// the call as sync_file_range2 (flags second), and 32-bit arches split
// the offsets into register pairs.
func startWriteback(fd uintptr, off, length int64) error {
	return unix.SyncFileRange(int(fd), off, length, unix.SYNC_FILE_RANGE_WRITE)
}
