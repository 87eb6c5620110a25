package topics

// BufferReader is a Log that can read into memory the caller reuses: the
// fetch path passes buffers it gets back once the response is written,
// rather than a fresh buffer per read.
type BufferReader interface {
	// ReadInto is Log.Read into dst's memory when cap(dst) holds the
	// bytes, else into a fresh buffer; the result is a slice of whichever
	// it used and stays the caller's.
	ReadInto(dst []byte, from Offset, maxBytes int) ([]byte, error)
}

// FileRange is record batches as a byte range of a file descriptor the
// holder owns (see RangeReader); Close closes it.
type FileRange interface {
	// Range returns the descriptor, the offset and the length.
	Range() (fd int, off int64, n int)
	Close() error
}

// RangeReader is a Log that can hand out batches as a file range, for a
// writer that sends them from file to socket in the kernel (sendfile).
type RangeReader interface {
	// ReadRange is Log.Read as a file range of at least minBytes; ok is
	// false (and there is nothing to close) when the log cannot give one,
	// and the caller reads instead.
	ReadRange(from Offset, maxBytes, minBytes int) (r FileRange, ok bool, err error)
}
