package protocol

import (
	"bufio"
	"context"
	"encoding/binary"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// repeatConn is a net.Conn whose reads return the same bytes over and
// over; deadlines are ignored.
type repeatConn struct {
	net.Conn
	data []byte
	off  int
}

func (c *repeatConn) Read(p []byte) (int, error) {
	n := copy(p, c.data[c.off:])
	c.off = (c.off + n) % len(c.data)
	return n, nil
}
func (c *repeatConn) SetReadDeadline(time.Time) error  { return nil }
func (c *repeatConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkReadFrame reads produce frames of several sizes through the
// reader's charging path (request memory reserved as bytes arrive).
func BenchmarkReadFrame(b *testing.B) {
	s := newFuzzServer(b)
	for _, size := range []int{16 << 10, 1 << 20, 6 << 20} {
		b.Run(strconv.Itoa(size>>10)+"KiB", func(b *testing.B) {
			req := kmsg.NewPtrProduceRequest()
			req.Acks = -1
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = "t"
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Records = make([]byte, size)
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			body := frameFor(req, 9, 1, "bench")
			data := append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
			c := &conn{s: s, nc: &repeatConn{data: data}, log: s.Logger, remote: "bench", mem: newByteBudget(s.cfg.MaxConnInflightBytes)}
			r := bufio.NewReaderSize(c.nc, 32<<10)
			ctx := context.Background()
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				f, err := c.readFrame(ctx, r, false)
				if err != nil {
					b.Fatal(err)
				}
				c.release(f)
			}
		})
	}
}
