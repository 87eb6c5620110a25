package protocol

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testRange is a file range over a descriptor of its own.
type testRange struct {
	fd  int
	off int64
	n   int
}

func (r testRange) Range() (int, int64, int) { return r.fd, r.off, r.n }
func (r testRange) Close() error             { return syscall.Close(r.fd) }

// openRange writes data to a file and returns a range of it [off,
// off+n) on a descriptor of its own.
func openRange(t *testing.T, data []byte, off int64, n int) testRange {
	t.Helper()
	path := filepath.Join(t.TempDir(), "seg")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return testRange{fd: fd, off: off, n: n}
}

// TestWritePiecesSendsRanges: the pieces around a nil vector go by
// writev and the file range in its place by sendfile, in order; a range
// past the file's end breaks the write rather than sending less than the
// frame announced.
func TestWritePiecesSendsRanges(t *testing.T) {
	if !canSendFile {
		t.Skip("no sendfile on " + runtime.GOOS)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640,000 bytes
	r := openRange(t, data, 1000, 500000)
	defer r.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		got <- b
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sent := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
	vecs := [][]byte{[]byte("head"), nil, []byte("tail")}
	if err := new(pieceWriter).write(nc, vecs, []filePiece{{at: 1, r: r}}, sent); err != nil {
		t.Fatal(err)
	}
	// A range past the end of the file: the write fails.
	short := openRange(t, data[:100], 0, 5000)
	defer short.Close()
	if err := new(pieceWriter).write(nc, [][]byte{nil}, []filePiece{{at: 0, r: short}}, sent); err == nil {
		t.Fatal("a range past the file's end was written without an error")
	}
	_ = nc.Close()
	want := append(append([]byte("head"), data[1000:501000]...), "tail"...)
	b := <-got
	if !bytes.HasPrefix(b, want) {
		t.Fatalf("received %d bytes, not head + the range + tail (%d bytes)", len(b), len(want))
	}
}

// TestMaterializeReadsRanges: a response that must be encoded whole gets
// the ranges' bytes in place of their stand-ins.
func TestMaterializeReadsRanges(t *testing.T) {
	if !canSendFile {
		t.Skip("no sendfile on " + runtime.GOOS)
	}
	data := bytes.Repeat([]byte{1, 2, 3, 4, 5}, 30000)
	r := openRange(t, data, 7, 100000)
	defer r.Close()
	op := kmsg.NewFetchResponseTopicPartition()
	op.RecordBatches = rangeStandIn()[:100000]
	materialize([]leasedRange{{op: &op, r: r}})
	if op.ErrorCode != 0 || !bytes.Equal(op.RecordBatches, data[7:100007]) {
		t.Fatalf("materialized %d bytes (error %d), not the range", len(op.RecordBatches), op.ErrorCode)
	}
}
