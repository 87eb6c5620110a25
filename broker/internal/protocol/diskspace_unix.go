//go:build linux || darwin

package protocol

import "syscall"

// diskSpace returns the size and the bytes available to an unprivileged
// writer of the filesystem holding dir, -1 and -1 when statfs fails.
func diskSpace(dir string) (total, usable int64) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1, -1
	}
	return int64(st.Blocks) * int64(st.Bsize), int64(st.Bavail) * int64(st.Bsize)
}
