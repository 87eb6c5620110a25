package metadata

import (
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every decoding failure: the bytes are not an
// encoding of records this version of Weir writes (truncated, trailing
// bytes, a length that overruns, a non-canonical varint, an impossible
// value). The quorum's storage checksums its entries, so a malformed entry
// means a bug or bytes that were never a metadata entry; it is never
// applied.
var ErrMalformed = errors.New("metadata: malformed record")

// ErrUnknownRecord is wrapped when an entry holds a record type or a record
// version this version of Weir does not know: the log was written by a newer
// Weir. A node that meets it cannot follow the log and must stop rather than
// skip the record.
var ErrUnknownRecord = errors.New("metadata: unknown record type or version")

// ErrInvalid is wrapped when a well-formed record cannot be applied to the
// image (a partition of an unknown topic, a stale broker epoch, a leader
// that is not in the ISR, ...). The whole entry is refused and the image is
// left as it was; see Image.Apply.
var ErrInvalid = errors.New("metadata: invalid record")

// IsMalformed reports whether err comes from bytes that do not decode.
func IsMalformed(err error) bool { return errors.Is(err, ErrMalformed) }

// IsUnknownRecord reports whether err comes from a record type or version
// this version of Weir cannot read.
func IsUnknownRecord(err error) bool { return errors.Is(err, ErrUnknownRecord) }

// IsInvalid reports whether err is a refusal of well-formed records that do
// not fit the image. Such a refusal is deterministic: every replica of the
// log refuses the same entry the same way.
func IsInvalid(err error) bool { return errors.Is(err, ErrInvalid) }

// kindError is an error of one of the kinds above with its own message, so
// that messages read "metadata: entry 7: record 2 (Partition): topic ... has
// no partition 3" rather than repeating the kind's text.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func malformedf(format string, args ...any) error {
	return &kindError{ErrMalformed, "malformed: " + fmt.Sprintf(format, args...)}
}

func unknownf(format string, args ...any) error {
	return &kindError{ErrUnknownRecord, fmt.Sprintf(format, args...)}
}

func invalidf(format string, args ...any) error {
	return &kindError{ErrInvalid, fmt.Sprintf(format, args...)}
}
