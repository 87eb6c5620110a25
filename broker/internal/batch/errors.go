package batch

import (
	"errors"
	"fmt"
)

// CorruptError reports a malformed batch: bad framing, a CRC mismatch, a
// count or length that does not match the bytes, a bad varint or a
// compressed payload that does not decompress. The broker answers it with
// Kafka's CORRUPT_MESSAGE; storage recovery truncates the log before it.
type CorruptError struct {
	// Code classifies the problem for callers that answer differently by
	// kind (a refused but well-formed batch is Kafka's INVALID_RECORD, a
	// damaged one CORRUPT_MESSAGE). The zero value is CodeMalformed.
	Code CorruptCode
	// Reason says what is wrong, in words.
	Reason string
	// Offset is the byte position of the problem. Header problems are
	// relative to the batch's first byte; record problems found after
	// decompression are relative to the start of the decompressed records.
	Offset int
	// Truncated is set when the bytes end before the batch does: a partial
	// tail of a segment or a fetch response rather than damaged bytes.
	Truncated bool
}

// Error implements error.
func (e *CorruptError) Error() string {
	if e.Truncated {
		return fmt.Sprintf("batch: truncated batch at byte %d: %s", e.Offset, e.Reason)
	}
	return fmt.Sprintf("batch: corrupt batch at byte %d: %s", e.Offset, e.Reason)
}

// CorruptCode classifies a CorruptError.
type CorruptCode uint8

// The corruption codes.
const (
	// CodeMalformed: the bytes are not a valid batch (framing, a length, a
	// count, a varint, compression), or they end early (Truncated).
	CodeMalformed CorruptCode = iota
	// CodeChecksum: the batch is well framed but its CRC does not match.
	CodeChecksum
	// CodeRefused: a well-formed batch that a producer may not send (a
	// control batch, an idempotent batch without an epoch or a sequence
	// number). Only ValidateProduced reports it.
	CodeRefused
)

func (c CorruptCode) String() string {
	switch c {
	case CodeMalformed:
		return "malformed"
	case CodeChecksum:
		return "checksum"
	case CodeRefused:
		return "refused"
	}
	return fmt.Sprintf("CorruptCode(%d)", uint8(c))
}

// CodeOf returns the code of the *CorruptError err is or wraps, and false
// when it wraps none.
func CodeOf(err error) (CorruptCode, bool) {
	var ce *CorruptError
	if !errors.As(err, &ce) {
		return 0, false
	}
	return ce.Code, true
}

// IsRefused reports whether err is or wraps a *CorruptError with
// CodeRefused: a well-formed batch a producer may not send.
func IsRefused(err error) bool {
	c, ok := CodeOf(err)
	return ok && c == CodeRefused
}

func refused(off int, format string, args ...any) error {
	return &CorruptError{Code: CodeRefused, Reason: fmt.Sprintf(format, args...), Offset: off}
}

func corrupt(off int, format string, args ...any) error {
	return &CorruptError{Reason: fmt.Sprintf(format, args...), Offset: off}
}

func truncated(off int, format string, args ...any) error {
	return &CorruptError{Reason: fmt.Sprintf(format, args...), Offset: off, Truncated: true}
}

// IsCorrupt reports whether err is or wraps a *CorruptError (truncated or
// not).
func IsCorrupt(err error) bool {
	var ce *CorruptError
	return errors.As(err, &ce)
}

// IsTruncated reports whether err is or wraps a *CorruptError that says the
// bytes end before the batch does.
func IsTruncated(err error) bool {
	var ce *CorruptError
	return errors.As(err, &ce) && ce.Truncated
}

// ErrTooLarge is returned (wrapped) by Records when a batch's records
// decompress, or would decompress, to more than the caller's bound. It is not
// a CorruptError: the batch may be fine, just larger than allowed.
var ErrTooLarge = errors.New("batch: decompressed records exceed the size limit")

// IsTooLarge reports whether err is or wraps ErrTooLarge.
func IsTooLarge(err error) bool { return errors.Is(err, ErrTooLarge) }
