package cli

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// RecordFormatter appends one record's text to a buffer.
type RecordFormatter interface {
	AppendRecord(dst []byte, r *kgo.Record) []byte
}

// FormatHuman is the default consume output, one line per record:
//
//	p=0 o=5 ts=2026-11-24T23:52:37.123Z key=order-123 h.trace=abc value={"total":59.98}
//
// A null key or value prints as <null>; keys and header values with spaces,
// quotes or unprintable bytes, and unprintable values, are Go-quoted.
type FormatHuman struct{}

// AppendRecord implements RecordFormatter.
func (FormatHuman) AppendRecord(dst []byte, r *kgo.Record) []byte {
	dst = fmt.Appendf(dst, "p=%d o=%d ts=%s key=", r.Partition, r.Offset, formatTime(r.Timestamp))
	dst = appendHuman(dst, r.Key, true)
	for _, h := range r.Headers {
		dst = append(dst, " h."...)
		dst = appendHuman(dst, []byte(h.Key), true)
		dst = append(dst, '=')
		dst = appendHuman(dst, h.Value, true)
	}
	dst = append(dst, " value="...)
	dst = appendHuman(dst, r.Value, false)
	return append(dst, '\n')
}

// appendHuman writes b as is when that reads unambiguously, else quoted.
// Spaces are allowed when the field ends the line (strict false).
func appendHuman(dst, b []byte, strict bool) []byte {
	if b == nil {
		return append(dst, "<null>"...)
	}
	if len(b) == 0 {
		return append(dst, `""`...)
	}
	plain := utf8.Valid(b) && b[0] != '"' && b[0] != '<'
	for _, r := range string(b) {
		if !plain {
			break
		}
		if !unicode.IsPrint(r) || (strict && (r == ' ' || r == '=')) {
			plain = false
		}
	}
	if plain {
		return append(dst, b...)
	}
	return strconv.AppendQuote(dst, string(b))
}

// escapes are the backslash escapes --format and --key-separator accept.
var escapes = map[byte]byte{'n': '\n', 't': '\t', 'r': '\r', '\\': '\\', '0': 0}

// Unescape interprets the escapes \n \t \r \\ \0 in s, so that a shell user
// can type --key-separator '\t'. Any other backslash sequence is an error.
func Unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return "", fmt.Errorf("cli: %q ends with a lone backslash", s)
		}
		i++
		esc, ok := escapes[s[i]]
		if !ok {
			return "", fmt.Errorf("cli: %q: unknown escape \\%c", s, s[i])
		}
		b.WriteByte(esc)
	}
	return b.String(), nil
}

// FormatTemplate formats records by a template in the style of kcat's -f:
//
//	%t topic   %p partition   %o offset   %T timestamp (Unix ms)
//	%k key     %v value       %K key length (-1 if null)   %S value length (-1 if null)
//	%h headers as k=v pairs separated by commas           %% a percent sign
//	\n newline  \t tab  \r carriage return  \\ backslash  \0 NUL
//
// Keys, values and headers are written as raw bytes; a null prints nothing.
type FormatTemplate struct {
	parts []tmplPart
}

type tmplPart struct {
	lit  []byte // literal bytes, when verb is 0
	verb byte
}

// ParseFormat compiles a FormatTemplate, refusing unknown verbs and escapes.
func ParseFormat(s string) (*FormatTemplate, error) {
	f := &FormatTemplate{}
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			f.parts = append(f.parts, tmplPart{lit: lit})
			lit = nil
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '%', '\\':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("cli: format %q ends with a lone %q", s, c)
			}
			i++
			n := s[i]
			if c == '\\' {
				esc, ok := escapes[n]
				if !ok {
					return nil, fmt.Errorf("cli: format %q: unknown escape \\%c", s, n)
				}
				lit = append(lit, esc)
				continue
			}
			if n == '%' {
				lit = append(lit, '%')
				continue
			}
			if !strings.ContainsRune("tpoTkvKSh", rune(n)) {
				return nil, fmt.Errorf("cli: format %q: unknown verb %%%c", s, n)
			}
			flush()
			f.parts = append(f.parts, tmplPart{verb: n})
		default:
			lit = append(lit, c)
		}
	}
	flush()
	return f, nil
}

// AppendRecord implements RecordFormatter.
func (f *FormatTemplate) AppendRecord(dst []byte, r *kgo.Record) []byte {
	nlen := func(b []byte) int {
		if b == nil {
			return -1
		}
		return len(b)
	}
	for _, p := range f.parts {
		switch p.verb {
		case 0:
			dst = append(dst, p.lit...)
		case 't':
			dst = append(dst, r.Topic...)
		case 'p':
			dst = strconv.AppendInt(dst, int64(r.Partition), 10)
		case 'o':
			dst = strconv.AppendInt(dst, r.Offset, 10)
		case 'T':
			dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
		case 'k':
			dst = append(dst, r.Key...)
		case 'v':
			dst = append(dst, r.Value...)
		case 'K':
			dst = strconv.AppendInt(dst, int64(nlen(r.Key)), 10)
		case 'S':
			dst = strconv.AppendInt(dst, int64(nlen(r.Value)), 10)
		case 'h':
			for i, h := range r.Headers {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, h.Key...)
				dst = append(dst, '=')
				dst = append(dst, h.Value...)
			}
		}
	}
	return dst
}

// JSONRecord is the shape of one record in consume's --json output (one
// object per line). A key, value or header value that is valid UTF-8 is a
// string (null when the field is null); otherwise it is left out and its
// bytes appear base64-encoded in the matching *_base64 field.
type JSONRecord struct {
	Topic       string       `json:"topic"`
	Partition   int32        `json:"partition"`
	Offset      int64        `json:"offset"`
	Timestamp   int64        `json:"timestamp"` // Unix milliseconds
	Key         *string      `json:"key"`
	KeyBase64   string       `json:"key_base64,omitempty"`
	Value       *string      `json:"value"`
	ValueBase64 string       `json:"value_base64,omitempty"`
	Headers     []JSONHeader `json:"headers,omitempty"`
}

// JSONHeader is one record header in JSONRecord.
type JSONHeader struct {
	Key         string  `json:"key"`
	Value       *string `json:"value"`
	ValueBase64 string  `json:"value_base64,omitempty"`
}

// jsonBytes splits b into the string and base64 forms JSONRecord uses.
func jsonBytes(b []byte) (*string, string) {
	if b == nil {
		return nil, ""
	}
	if utf8.Valid(b) {
		s := string(b)
		return &s, ""
	}
	return nil, base64.StdEncoding.EncodeToString(b)
}

// FromJSON returns the bytes a JSON key, value or header value stands for.
func FromJSON(s *string, b64 string) ([]byte, error) {
	if b64 != "" {
		return base64.StdEncoding.DecodeString(b64)
	}
	if s == nil {
		return nil, nil
	}
	return []byte(*s), nil
}

// FormatJSON writes each record as one JSONRecord line.
type FormatJSON struct{}

// AppendRecord implements RecordFormatter.
func (FormatJSON) AppendRecord(dst []byte, r *kgo.Record) []byte {
	jr := JSONRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UnixMilli()}
	jr.Key, jr.KeyBase64 = jsonBytes(r.Key)
	jr.Value, jr.ValueBase64 = jsonBytes(r.Value)
	for _, h := range r.Headers {
		jh := JSONHeader{Key: h.Key}
		jh.Value, jh.ValueBase64 = jsonBytes(h.Value)
		jr.Headers = append(jr.Headers, jh)
	}
	b, err := json.Marshal(jr)
	if err != nil {
		// Only strings, numbers and slices of them: cannot fail.
		panic(fmt.Sprintf("cli: marshal record: %v", err))
	}
	dst = append(dst, b...)
	return append(dst, '\n')
}

// formatTime is the human form of a timestamp.
func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
