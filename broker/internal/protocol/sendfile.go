package protocol

import (
	"fmt"
	"net"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/topics"
)

// On a plaintext TCP connection, a consumer's Fetch sends large runs of
// batches straight from the segment files (sendfile): the log hands out a
// file range (topics.RangeReader) instead of reading the bytes, the
// partition's RecordBatches is a stand-in of the same length (a slice of
// rangeStandIn, never sent), and the writer sends the response's own
// bytes around it with vectored writes and the range with sendfile. The
// batches then never pass through user space: no read into a buffer, no
// copy into the socket. TLS connections, read_committed reads, follower
// fetches and runs under rangeMinBytes take the copying path.
//
// The lease owns the ranges' descriptors until the response is written
// (or dropped) and the writer calls done. Should the response have to be
// encoded whole after all (encodeFetchSplicedFiles finding no place for
// a range), materialize reads the ranges into memory first.

// rangeMinBytes is the smallest run of batches sent from its file; below
// it, reading into a kept buffer costs less than the descriptor and the
// system calls of its own.
const rangeMinBytes = 64 << 10

// maxRangeBytes bounds one range (and is the stand-in's size).
const maxRangeBytes = 8 << 20

// rangeStandIn is what a ranged partition's RecordBatches is a slice of:
// it gives the response its length. Nothing writes it; nothing may send
// it.
var rangeStandIn = sync.OnceValue(func() []byte { return make([]byte, maxRangeBytes) })

// leasedRange is a file range standing in for op's batches.
type leasedRange struct {
	op *kmsg.FetchResponseTopicPartition
	r  topics.FileRange
}

// filePiece says that vector at of an encoded response is file range r.
type filePiece struct {
	at int
	r  topics.FileRange
}

// readAny is read, or a file range when the connection can send one and
// the log gives one; it sets op's batches either way.
func (fl *fetchLease) readAny(l topics.Log, op *kmsg.FetchResponseTopicPartition, from topics.Offset, maxBytes int) ([]byte, error) {
	if canSendFile && fl.c != nil && fl.c.plainTCP && maxBytes >= rangeMinBytes {
		if rr, ok := l.(topics.RangeReader); ok {
			r, ok, err := rr.ReadRange(from, min(maxBytes, maxRangeBytes), rangeMinBytes)
			if err != nil {
				return nil, err
			}
			if ok {
				_, _, n := r.Range()
				fl.files = append(fl.files, leasedRange{op: op, r: r})
				return rangeStandIn()[:n:n], nil
			}
		}
	}
	return fl.read(l, from, maxBytes)
}

// pieceWriter writes encoded Fetch responses with file ranges to one
// connection (the connection's writer owns one): it keeps the file sender
// and a vector slice for the pieces between ranges, so that a response
// costs no allocation of its own.
type pieceWriter struct {
	files fileSender
	// vecs keeps the array; cur is the slice a write consumes.
	vecs, cur net.Buffers
}

// write writes vecs to nc, with the file ranges of files where they stand
// (their vectors are nil), through pw's kept state. sent counts the
// ranges' bytes.
func (pw *pieceWriter) write(nc net.Conn, vecs net.Buffers, files []filePiece, sent prometheus.Counter) error {
	prev := 0
	for _, f := range files {
		if f.at > prev {
			if err := pw.writeVecs(nc, vecs[prev:f.at]); err != nil {
				return err
			}
		}
		if err := pw.files.send(nc, f.r); err != nil {
			return err
		}
		_, _, n := f.r.Range()
		sent.Add(float64(n))
		prev = f.at + 1
	}
	if prev < len(vecs) {
		return pw.writeVecs(nc, vecs[prev:])
	}
	return nil
}

// writeVecs writes bufs with one vectored write, through pw's kept slices
// (net.Buffers.WriteTo consumes the slice it is called on).
func (pw *pieceWriter) writeVecs(nc net.Conn, bufs net.Buffers) error {
	pw.vecs = append(pw.vecs[:0], bufs...)
	pw.cur = pw.vecs
	_, err := pw.cur.WriteTo(nc)
	clear(pw.vecs) // keep none of the response's buffers
	return err
}

// materialize reads every range into memory and makes it its partition's
// batches, for a response encoded whole.
func materialize(files []leasedRange) {
	for _, f := range files {
		fd, off, n := f.r.Range()
		b := make([]byte, n)
		if err := preadFull(fd, b, off); err != nil {
			// The range was whole batches when taken and its descriptor
			// keeps the file: this is an I/O error. Send no batches
			// rather than the stand-in.
			f.op.RecordBatches = []byte{}
			f.op.ErrorCode = errorCode(fmt.Errorf("protocol: read a fetch range: %w", err))
			continue
		}
		f.op.RecordBatches = b
	}
}
