package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// xerialMagic opens the snappy framing that Java clients write (snappy-java's
// SnappyOutputStream): magic, then big-endian version and minimum compatible
// version, then chunks of a big-endian int32 length and a raw snappy block.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderSize = 16

// zstdMaxWindow bounds the window a zstd frame may ask for, and so the memory
// one decode can take regardless of the output bound. Kafka's producers use
// windows of a few MiB at most.
const zstdMaxWindow = 64 << 20

var (
	gzipReaders sync.Pool // *gzip.Reader
	lz4Readers  = sync.Pool{New: func() any { return lz4.NewReader(nil) }}
	gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}
	lz4Writers  = sync.Pool{New: func() any { return lz4.NewWriter(nil) }}
	// zstdReaders hold synchronous stream decoders (concurrency 1 starts no
	// goroutines), so pooling them leaks nothing.
	zstdReaders = sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderLowmem(true))
		if err != nil {
			panic(fmt.Sprintf("batch: zstd decoder options: %v", err)) // fixed options: a broken invariant
		}
		return d
	}}
	zstdEncoder = sync.OnceValue(func() *zstd.Encoder {
		e, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		if err != nil {
			panic(fmt.Sprintf("batch: zstd encoder options: %v", err))
		}
		return e
	})
)

// decompress returns the decompression of src by codec, refusing (with
// ErrTooLarge) output past limit bytes. Malformed input is a CorruptError.
func decompress(codec Codec, src []byte, limit int) ([]byte, error) {
	// Callers may pass math.MaxInt for "no limit"; keep max+1 from
	// overflowing.
	bound := min(max(limit, 0), math.MaxInt-1)
	switch codec {
	case CodecGzip:
		zr, _ := gzipReaders.Get().(*gzip.Reader)
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(bytes.NewReader(src))
		} else {
			err = zr.Reset(bytes.NewReader(src))
		}
		if err != nil {
			return nil, codecErr(codec, err)
		}
		defer gzipReaders.Put(zr)
		return readBounded(codec, zr, bound, len(src))
	case CodecSnappy:
		return snappyDecode(src, bound)
	case CodecLZ4:
		zr := lz4Readers.Get().(*lz4.Reader)
		defer lz4Readers.Put(zr)
		zr.Reset(bytes.NewReader(src))
		return readBounded(codec, zr, bound, len(src))
	case CodecZstd:
		zr := zstdReaders.Get().(*zstd.Decoder)
		defer zstdReaders.Put(zr)
		if err := zr.Reset(bytes.NewReader(src)); err != nil {
			return nil, codecErr(codec, err)
		}
		out, err := readBounded(codec, zr, bound, len(src))
		// Drop the reference to src so the pooled decoder does not pin it.
		_ = zr.Reset(bytes.NewReader(nil))
		return out, err
	}
	return nil, corrupt(posAttributes, "unknown compression codec %d", codec)
}

// scratchBufs hold the growing read buffers of readBounded, so that a
// decode allocates only its exact output. Buffers past maxPooledScratch are
// dropped rather than pinned.
var scratchBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

const maxPooledScratch = 4 << 20

// readBounded reads r to its end, failing with ErrTooLarge past max bytes,
// and returns the output in a new slice of exactly its size.
func readBounded(codec Codec, r io.Reader, max, hint int) ([]byte, error) {
	bp := scratchBufs.Get().(*[]byte)
	buf := (*bp)[:0]
	defer func() {
		if cap(buf) <= maxPooledScratch {
			*bp = buf[:0]
			scratchBufs.Put(bp)
		}
	}()
	if want := min(max+1, 4*hint+512); cap(buf) < want {
		buf = make([]byte, 0, want)
	}
	for {
		if len(buf) == cap(buf) {
			if len(buf) > max {
				return nil, fmt.Errorf("%w (%s, limit %d bytes)", ErrTooLarge, codec, max)
			}
			buf = append(buf, 0)[:len(buf)]
		}
		// Never read more than max+1 bytes in all.
		room := min(cap(buf), max+1)
		n, err := r.Read(buf[len(buf):room])
		buf = buf[:len(buf)+n]
		if len(buf) > max {
			return nil, fmt.Errorf("%w (%s, limit %d bytes)", ErrTooLarge, codec, max)
		}
		if err == io.EOF {
			return append([]byte(nil), buf...), nil
		}
		if err != nil {
			return nil, codecErr(codec, err)
		}
	}
}

func codecErr(codec Codec, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("compressed data ends early: %w", err)
	}
	return corrupt(HeaderSize, "%s: %v", codec, err)
}

// snappyDecode decodes a raw snappy block or xerial-framed snappy chunks.
func snappyDecode(src []byte, max int) ([]byte, error) {
	if !bytes.HasPrefix(src, xerialMagic) {
		return snappyBlock(nil, src, max)
	}
	if len(src) < xerialHeaderSize {
		return nil, corrupt(HeaderSize, "snappy: xerial header needs %d bytes, have %d", xerialHeaderSize, len(src))
	}
	var out []byte
	pos := xerialHeaderSize
	for pos < len(src) {
		if len(src)-pos < 4 {
			return nil, corrupt(HeaderSize+pos, "snappy: xerial chunk length needs 4 bytes, have %d", len(src)-pos)
		}
		n := binary.BigEndian.Uint32(src[pos:])
		pos += 4
		if uint64(n) > uint64(len(src)-pos) {
			return nil, corrupt(HeaderSize+pos-4, "snappy: xerial chunk of %d bytes, %d remain", n, len(src)-pos)
		}
		var err error
		if out, err = snappyBlock(out, src[pos:pos+int(n)], max); err != nil {
			return nil, err
		}
		pos += int(n)
	}
	return out, nil
}

// snappyBlock appends the decoding of one raw snappy block to dst, keeping
// the total within max.
func snappyBlock(dst, block []byte, max int) ([]byte, error) {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return nil, codecErr(CodecSnappy, err)
	}
	if n > max-len(dst) {
		return nil, fmt.Errorf("%w (snappy, limit %d bytes)", ErrTooLarge, max)
	}
	start := len(dst)
	dst = grow(dst, n)
	if _, err := s2.Decode(dst[start:start+n], block); err != nil {
		return nil, codecErr(CodecSnappy, err)
	}
	return dst[:start+n], nil
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, 2*len(b)+n)
	copy(nb, b)
	return nb
}

// compress appends the compression of src by codec to dst.
func compress(dst []byte, codec Codec, src []byte) ([]byte, error) {
	switch codec {
	case CodecGzip:
		w := bytes.NewBuffer(dst)
		zw := gzipWriters.Get().(*gzip.Writer)
		defer gzipWriters.Put(zw)
		zw.Reset(w)
		if _, err := zw.Write(src); err != nil {
			return nil, fmt.Errorf("batch: gzip: %w", err)
		}
		if err := zw.Close(); err != nil {
			return nil, fmt.Errorf("batch: gzip: %w", err)
		}
		return w.Bytes(), nil
	case CodecSnappy:
		// A raw block: every Kafka client reads it, and Weir's reader takes
		// xerial framing too.
		return append(dst, s2.EncodeSnappy(nil, src)...), nil
	case CodecLZ4:
		w := bytes.NewBuffer(dst)
		zw := lz4Writers.Get().(*lz4.Writer)
		defer lz4Writers.Put(zw)
		zw.Reset(w)
		if _, err := zw.Write(src); err != nil {
			return nil, fmt.Errorf("batch: lz4: %w", err)
		}
		if err := zw.Close(); err != nil {
			return nil, fmt.Errorf("batch: lz4: %w", err)
		}
		return w.Bytes(), nil
	case CodecZstd:
		return zstdEncoder().EncodeAll(src, dst), nil
	}
	return nil, fmt.Errorf("batch: unknown codec %d", codec)
}
