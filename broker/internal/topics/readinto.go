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
