package console

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/weir-dev/weir/internal/msgpackcheck"
)

// FuzzRender renders arbitrary bytes in every format: the answer is
// bounded, valid UTF-8, in a known format, and a hex rendering is the hex
// of the bytes' start.
func FuzzRender(f *testing.F) {
	mp, _ := msgpack.Marshal(map[string]any{"a": []any{1, "x", nil, 2.5}, "b": map[int]string{1: "y"}})
	for _, seed := range [][]byte{nil, {}, []byte(`{"a":1}`), []byte("text"), {0xff, 0x00}, mp, {0xc1}, {0xdd, 0xff, 0xff, 0xff, 0xff}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, format := range []string{FormatAuto, FormatJSON, FormatMsgpack, FormatText, FormatHex} {
			r := Render(b, format)
			if b == nil {
				if !r.Null {
					t.Fatalf("nil as %s: %+v", format, r)
				}
				continue
			}
			if len(r.Text) > maxRendered || !utf8.ValidString(r.Text) || r.Bytes != len(b) {
				t.Fatalf("%x as %s: %d bytes of text (valid %v), %d bytes", b, format, len(r.Text), utf8.ValidString(r.Text), r.Bytes)
			}
			switch r.Format {
			case FormatJSON, FormatMsgpack, FormatText:
				if format != FormatAuto && r.Format != format {
					t.Fatalf("%x as %s rendered as %s", b, format, r.Format)
				}
			case FormatHex:
				if !strings.HasPrefix(hex.EncodeToString(b), r.Text) {
					t.Fatalf("%x as hex: %q", b, r.Text)
				}
			default:
				t.Fatalf("%x as %s: format %q", b, format, r.Format)
			}
		}
	})
}

func TestMsgpackWellFormed(t *testing.T) {
	valid, _ := msgpack.Marshal(map[string]any{"id": 7, "tags": []string{"a", "b"}, "pi": 3.14, "raw": []byte{1, 2}, "neg": -40000, "big": uint64(1 << 40)})
	deep := append(bytes.Repeat([]byte{0x91}, msgpackcheck.MaxDepth), 0x01)
	tooDeep := append(bytes.Repeat([]byte{0x91}, msgpackcheck.MaxDepth+1), 0x01)
	for _, c := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"a map of every kind", valid, true},
		{"a fixint", []byte{0x05}, true},
		{"nested to the limit", deep, true},
		{"nested past the limit", tooDeep, false},
		{"array32 of 2^32-1 in 5 bytes", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, false},
		{"map16 longer than the bytes", []byte{0xde, 0x00, 0x05, 0x01, 0x01}, false},
		{"str8 past the end", []byte{0xd9, 0x05, 'a'}, false},
		{"two values", []byte{0x01, 0x02}, false},
		{"the unused byte 0xc1", []byte{0xc1}, false},
		{"fixext4", []byte{0xd6, 0x01, 1, 2, 3, 4}, true},
		{"ext8 cut short", []byte{0xc7, 0x03, 0x01, 1}, false},
		{"empty", []byte{}, false},
	} {
		if got := msgpackWellFormed(c.b); got != c.want {
			t.Errorf("%s (%x): %v, want %v", c.name, c.b, got, c.want)
		}
	}
}
