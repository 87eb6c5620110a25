//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// dropCached drops [from, to) of f from the page cache.
func dropCached(f *os.File, from, to int64) {
	const fadvDontNeed = 4
	_, _, _ = syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), uintptr(from), uintptr(to-from), fadvDontNeed, 0, 0)
}

// spliceFrames is readFrames by splice(2): each batch moves from the
// socket through a pipe into the file (the kernel copies it once, into the
// page cache), and its CRC is then checked over the file's pages mapped in.
// A batch whose CRC is wrong is already in the file: the stream fails
// before the syncer counts it (a broker would truncate it).
func (s *replStream) spliceFrames(c *net.TCPConn) error {
	defer close(s.done)
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		return err
	}
	defer syscall.Close(p[0])
	defer syscall.Close(p[1])
	const fSetPipeSz = 1031
	pipeCap, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(p[1]), fSetPipeSz, 1<<20)
	if errno != 0 {
		pipeCap = 64 << 10
	}
	ffd := int(s.f.Fd())
	const spliceMove, spliceNonblock = 1, 2
	for {
		var l [4]byte
		n, err := readFrameLen(c, &l)
		if err != nil {
			return err
		}
		start := s.written.Load()
		off := start
		for left := n; left > 0; {
			var moved int
			var serr error
			err := rc.Read(func(fd uintptr) bool {
				var m int64
				m, serr = syscall.Splice(int(fd), nil, p[1], nil, min(left, int(pipeCap)), spliceMove|spliceNonblock)
				moved = int(m)
				return serr != syscall.EAGAIN
			})
			if err != nil {
				return err
			}
			if serr != nil {
				return serr
			}
			if moved == 0 {
				return io.ErrUnexpectedEOF
			}
			left -= moved
			for moved > 0 {
				w, err := syscall.Splice(p[0], nil, ffd, &off, moved, spliceMove)
				if err != nil {
					return err
				}
				moved -= int(w)
			}
		}
		if err := checkMappedCRC(ffd, start, n); err != nil {
			return fmt.Errorf("batch at byte %d: %w", start, err)
		}
		s.appended(n)
	}
}

// checkMappedCRC checks the CRC32C of the batch at [off, off+n) of the
// file fd over its pages mapped in.
func checkMappedCRC(fd int, off int64, n int) error {
	base := off &^ int64(os.Getpagesize()-1)
	m, err := syscall.Mmap(fd, base, int(off-base)+n, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return err
	}
	defer syscall.Munmap(m)
	body := m[off-base:]
	if !batchCRCOK(body[:n]) {
		return errors.New("CRC mismatch")
	}
	return nil
}
