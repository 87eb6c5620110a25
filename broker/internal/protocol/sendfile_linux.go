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

// fileSender sends file ranges to one connection with sendfile. It keeps
// the connection's RawConn and the callback bound to its own state, so
// that sending a range allocates nothing. Not safe for concurrent use
// (the connection's writer owns one).
type fileSender struct {
	rc  syscall.RawConn
	fn  func(uintptr) bool
	fd  int
	off int64
	n   int
	err error
}

// send sends r's bytes to nc (a *net.TCPConn) from the file, in the
// kernel, honouring nc's write deadline.
func (fs *fileSender) send(nc net.Conn, r interface{ Range() (int, int64, int) }) error {
	if fs.rc == nil {
		sc, ok := nc.(syscall.Conn)
		if !ok {
			return kerr.UnknownServerError // plainTCP said otherwise
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return err
		}
		fs.rc, fs.fn = rc, fs.write
	}
	fs.fd, fs.off, fs.n = r.Range()
	fs.err = nil
	if err := fs.rc.Write(fs.fn); err != nil {
		return err
	}
	return fs.err
}

// write is the RawConn.Write callback: it sends until the range is done
// (true) or the socket is full (false: wait until it is writable).
func (fs *fileSender) write(s uintptr) bool {
	for fs.n > 0 {
		m, e := syscall.Sendfile(int(s), fs.fd, &fs.off, min(fs.n, 1<<30))
		if m > 0 {
			fs.n -= m
		}
		switch {
		case e == syscall.EAGAIN:
			return false // wait until the socket is writable
		case e == syscall.EINTR:
		case e != nil:
			fs.err = e
			return true
		case m == 0:
			// The file is shorter than the range: the frame's length
			// is already on the wire, so the connection must end.
			fs.err = io.ErrUnexpectedEOF
			return true
		}
	}
	return true
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
