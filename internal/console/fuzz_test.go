package console

import (
	"encoding/hex"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
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
