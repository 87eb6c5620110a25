//go:build !linux

package protocol

import (
	"errors"
	"net"
)

// canSendFile: this system has sendfile from a file to a socket.
const canSendFile = false

var errNoSendFile = errors.New("protocol: no sendfile here")

type fileSender struct{}

func (*fileSender) send(net.Conn, interface{ Range() (int, int64, int) }) error { return errNoSendFile }

func preadFull(int, []byte, int64) error { return errNoSendFile }
