//go:build linux

package protocol

import (
	"io"
	"net"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
)

// canSendFile: this system has sendfile from a file to a socket.
const canSendFile = true

// sendFileRange sends r's bytes to nc (a *net.TCPConn) from the file, in
// the kernel, honouring nc's write deadline.
func sendFileRange(nc net.Conn, r interface{ Range() (int, int64, int) }) error {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return kerr.UnknownServerError // plainTCP said otherwise
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	fd, off, n := r.Range()
	var serr error
	err = rc.Write(func(s uintptr) bool {
		for n > 0 {
			m, e := syscall.Sendfile(int(s), fd, &off, min(n, 1<<30))
			if m > 0 {
				n -= m
			}
			switch {
			case e == syscall.EAGAIN:
				return false // wait until the socket is writable
			case e == syscall.EINTR:
			case e != nil:
				serr = e
				return true
			case m == 0:
				// The file is shorter than the range: the frame's length
				// is already on the wire, so the connection must end.
				serr = io.ErrUnexpectedEOF
				return true
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	return serr
}

// preadFull reads len(b) bytes of fd at off.
func preadFull(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		m, err := syscall.Pread(fd, b, off)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if m == 0 {
			return io.ErrUnexpectedEOF
		}
		b, off = b[m:], off+int64(m)
	}
	return nil
}
