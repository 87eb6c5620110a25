package msgpackcheck

import (
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func TestCheck(t *testing.T) {
	good, err := msgpack.Marshal(map[string]any{"id": "o1", "items": []int64{1, 2, 3}, "n": 2.5, "b": []byte{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	deep := []byte{}
	for range MaxDepth + 1 {
		deep = append(deep, 0x91) // an array of one element
	}
	deep = append(deep, 0x01)
	for _, c := range []struct {
		name string
		b    []byte
		want string // "" for well formed
	}{
		{"map", good, ""},
		{"nil", []byte{0xc0}, ""},
		{"fixext4", []byte{0xd6, 0x01, 1, 2, 3, 4}, ""},
		{"empty", nil, "ends early"},
		{"array32 of 2^32-1", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, "value at byte 0 declares 4294967295, only 0 bytes follow"},
		{"typed slice claiming more than follows", []byte{0x81, 0xa5, 'I', 't', 'e', 'm', 's', 0xdd, 0x10, 0, 0, 0, 1}, "value at byte 7 declares 268435456, only 1 bytes follow"},
		{"str8 cut", []byte{0xd9, 0x05, 'a'}, "declares 5, only 1 bytes follow"},
		{"header cut", []byte{0xcd, 0x01}, "declares 2, only 1 bytes follow"},
		{"never used", []byte{0xc1}, "bad or cut header 0xc1 at byte 0"},
		{"trailing", []byte{0x01, 0x02}, "1 bytes after the value"},
		{"too deep", deep, "nested deeper than 64"},
	} {
		err := Check(c.b)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want an error with %q", c.name, err, c.want)
		}
	}
}

func TestCheckAllocatesNothing(t *testing.T) {
	b, err := msgpack.Marshal(map[string]any{"a": []any{1, "x", map[string]int{"y": 2}}})
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = Check(b) }); n != 0 {
		t.Fatalf("Check allocated %v times per call", n)
	}
}

// FuzzCheck: whatever Check accepts, the decoder reads without a panic
// (it may still refuse what msgpack's extensions mean), and every
// container it declared fits in the bytes given, so no input makes it
// allocate more than a small multiple of its length.
func FuzzCheck(f *testing.F) {
	f.Add([]byte{0x93, 0x01, 0xa1, 'x', 0xc0})
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x81, 0xa1, 'k', 0xdc, 0x00, 0x02, 0x01, 0x02})
	f.Fuzz(func(t *testing.T, b []byte) {
		if Check(b) != nil {
			return
		}
		var v any
		_ = msgpack.Unmarshal(b, &v)
	})
}

func TestMayClaimMuch(t *testing.T) {
	small, err := msgpack.Marshal(map[string]any{"id": "o1", "n": 5})
	if err != nil {
		t.Fatal(err)
	}
	if MayClaimMuch(small) {
		t.Errorf("%x: no 16- or 32-bit header, yet MayClaimMuch", small)
	}
	for _, b := range [][]byte{{0xdd, 0xff, 0xff, 0xff, 0xff}, {0x81, 0xa1, 'k', 0xdc, 0xff, 0xff}, {0xc6, 0, 0, 1, 0}} {
		if !MayClaimMuch(b) {
			t.Errorf("%x: a wide header, yet not MayClaimMuch", b)
		}
	}
}
