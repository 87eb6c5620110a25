package protocol

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"net"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A Fetch response is mostly record batches read from the logs. Encoding
// it whole copies every batch into the response buffer (a large, freshly
// zeroed allocation per response, since the writer does not keep buffers
// above 1 MiB). Instead the writer encodes the response with each large
// batch replaced by a marker, finds the markers in the (small) encoding,
// and sends the pieces around them and the batches themselves with one
// vectored write (net.Buffers): the batches go from the buffers the logs
// were read into straight to the socket.

// spliceMinBytes is the smallest batch payload sent uncopied; smaller ones
// are cheaper to copy than to give a write vector of their own.
const spliceMinBytes = 8 << 10

// spliceMarkerLen is the length of a marker: spliceMagic and the index of
// the batch it stands for.
const spliceMarkerLen = 16

// spliceMagic starts every marker: random per process, so that nothing a
// client sent (topic names) can be mistaken for one.
var spliceMagic = func() (m [spliceMarkerLen - 4]byte) {
	_, _ = rand.Read(m[:])
	return m
}()

// encodeFetchSpliced encodes fr framed (as encodeResponse does) into dst
// with its batches of at least spliceMinBytes left out, and returns the
// frame as write vectors in order: pieces of the returned buffer, length
// prefixes, and the batches themselves (fr's own slices, which must stay
// untouched until the vectors are written). It returns nil vectors when no
// batch is large enough, or when a marker cannot be located where it must
// be (then the caller encodes the response whole); the returned buffer is
// dst's storage for reuse either way.
func encodeFetchSpliced(dst []byte, correlationID int32, fr *kmsg.FetchResponse, headerV0 bool) (net.Buffers, []byte) {
	vecs, _, out := encodeFetchSplicedFiles(dst, correlationID, fr, headerV0, nil)
	return vecs, out
}

// encodeFetchSplicedFiles is encodeFetchSpliced for a response some of
// whose partitions' batches are file ranges (ranges; their RecordBatches
// only stand in for them, see sendfile.go): each such batch is a nil
// vector, and the returned pieces say which range goes there.
func encodeFetchSplicedFiles(dst []byte, correlationID int32, fr *kmsg.FetchResponse, headerV0 bool, ranges []leasedRange) (net.Buffers, []filePiece, []byte) {
	var large []*kmsg.FetchResponseTopicPartition
	for i := range fr.Topics {
		for j := range fr.Topics[i].Partitions {
			if p := &fr.Topics[i].Partitions[j]; len(p.RecordBatches) >= spliceMinBytes {
				large = append(large, p)
			}
		}
	}
	if len(large) == 0 {
		return nil, nil, dst
	}
	batches := make([][]byte, len(large))
	markers := make([]byte, 0, len(large)*spliceMarkerLen)
	for i, p := range large {
		batches[i] = p.RecordBatches
		markers = append(markers, spliceMagic[:]...)
		markers = binary.BigEndian.AppendUint32(markers, uint32(i))
		p.RecordBatches = markers[i*spliceMarkerLen : (i+1)*spliceMarkerLen]
	}
	out := appendResponse(dst[:0], correlationID, fr, headerV0)
	for i, p := range large {
		p.RecordBatches = batches[i]
	}

	flexible := fr.IsFlexible()
	markerPrefix := appendBytesLen(nil, spliceMarkerLen, flexible)
	// Each batch needs a head piece, its length prefix and itself, plus
	// the tail; the prefixes share one array, sized so it never moves.
	bufs := make(net.Buffers, 0, 3*len(large)+1)
	prefixes := make([]byte, 0, 5*len(large))
	var files []filePiece
	prev := 0 // where the next piece starts
	size := len(out) - 4
	for i := range large {
		marker := markers[i*spliceMarkerLen : (i+1)*spliceMarkerLen]
		from := max(prev, 4) // past the frame size
		at := bytes.Index(out[from:], marker)
		if at < 0 {
			return nil, nil, out
		}
		at += from
		start := at - len(markerPrefix)
		if start < from || !bytes.Equal(out[start:at], markerPrefix) {
			return nil, nil, out
		}
		n := len(prefixes)
		prefixes = appendBytesLen(prefixes, len(batches[i]), flexible)
		bufs = append(bufs, out[prev:start], prefixes[n:], batches[i])
		for _, r := range ranges {
			if r.op == large[i] {
				bufs[len(bufs)-1] = nil
				files = append(files, filePiece{at: len(bufs) - 1, r: r.r})
				break
			}
		}
		size += len(prefixes) - n + len(batches[i]) - len(markerPrefix) - spliceMarkerLen
		prev = at + spliceMarkerLen
	}
	bufs = append(bufs, out[prev:])
	binary.BigEndian.PutUint32(out, uint32(size))
	return bufs, files, out
}

// appendBytesLen appends the length prefix of an n-byte (non-null) bytes
// field: a compact (uvarint n+1) one in flexible versions, an int32 one
// otherwise.
func appendBytesLen(dst []byte, n int, flexible bool) []byte {
	if flexible {
		return binary.AppendUvarint(dst, uint64(n)+1)
	}
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}
