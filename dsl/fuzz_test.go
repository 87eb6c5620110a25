package dsl

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/streams"
)

// Decoding any bytes either fails or yields a key that encodes back to the
// same bytes (the string inner serde is the identity).
func FuzzWindowedSerde(f *testing.F) {
	s := WindowedSerde(serde.String(), time.Minute)
	seed, _ := s.Serialize("t", Windowed[string]{Key: "k", Window: Window{Start: time.UnixMilli(60_000)}})
	f.Add(seed)
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7})
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := s.Deserialize("t", b)
		if err != nil {
			if len(b) >= 8 {
				t.Fatalf("rejected %d bytes: %v", len(b), err)
			}
			return
		}
		if got := w.Window.End.Sub(w.Window.Start); got != time.Minute {
			t.Fatalf("window length %v", got)
		}
		out, err := s.Serialize("t", w)
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("round trip %x -> %+v -> %x, %v", b, w, out, err)
		}
	})
}

func FuzzSessionWindowedSerde(f *testing.F) {
	s := SessionWindowedSerde(serde.String())
	seed, _ := s.Serialize("t", Windowed[string]{Key: "k", Window: Window{Start: time.UnixMilli(5), End: time.UnixMilli(9)}})
	f.Add(seed)
	f.Add([]byte("short"))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := s.Deserialize("t", b)
		if err != nil {
			if len(b) >= 16 {
				t.Fatalf("rejected %d bytes: %v", len(b), err)
			}
			return
		}
		out, err := s.Serialize("t", w)
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("round trip %x -> %+v -> %x, %v", b, w, out, err)
		}
	})
}

func FuzzNullableSerde(f *testing.F) {
	s := NullableSerde(serde.Int64())
	f.Add([]byte(nil), true)
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 7}, false)
	f.Fuzz(func(t *testing.T, b []byte, nilBytes bool) {
		if nilBytes {
			b = nil
		}
		v, err := s.Deserialize("t", b)
		if err != nil {
			return
		}
		if v.Valid != (b != nil) {
			t.Fatalf("valid %v for bytes %x (nil %v)", v.Valid, b, b == nil)
		}
		out, err := s.Serialize("t", v)
		if err != nil {
			t.Fatal(err)
		}
		if (out == nil) != (b == nil) {
			t.Fatalf("tombstone not preserved: %x -> %x", b, out)
		}
	})
}

// The value lists of the join window stores decode to values that encode
// back to the same bytes, or fail.
func FuzzJoinValueList(f *testing.F) {
	f.Add(appendValue(appendValue(nil, []byte("a")), []byte("bc")))
	f.Add([]byte{0xff})
	f.Add([]byte{5, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		var vals [][]byte
		err := eachValue(b, func(v []byte) error {
			vals = append(vals, append([]byte(nil), v...))
			return nil
		})
		if err != nil {
			return
		}
		if got := joinValues(vals); !bytes.Equal(got, b) && len(b) > 0 {
			// Uvarint accepts non-minimal encodings; re-decoding the
			// re-encoded list must still give the same values.
			var again [][]byte
			if err := eachValue(got, func(v []byte) error { again = append(again, v); return nil }); err != nil || len(again) != len(vals) {
				t.Fatalf("re-encoded list %x does not decode to %d values: %v", got, len(vals), err)
			}
			for i := range vals {
				if !bytes.Equal(again[i], vals[i]) {
					t.Fatalf("value %d: %x != %x", i, again[i], vals[i])
				}
			}
		}
	})
}

// Change records of table re-grouping decode to a Change that encodes back
// to a record decoding the same, or fail.
func FuzzChangeSerde(f *testing.F) {
	s := changeSerde[string]{inner: serde.String()}
	for _, c := range []Change[string]{{New: "n", HasNew: true}, {Old: "o", HasOld: true}, {New: "a", Old: "b", HasNew: true, HasOld: true}, {}} {
		b, _ := s.Serialize("t", c)
		f.Add(b)
	}
	f.Add([]byte{9})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := s.Deserialize("t", b)
		if err != nil {
			return
		}
		out, err := s.Serialize("t", c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := s.Deserialize("t", out)
		if err != nil || c2 != c {
			t.Fatalf("%x -> %+v -> %x -> %+v, %v", b, c, out, c2, err)
		}
	})
}

// A suppress buffer entry decodes back to what was encoded, and any bytes
// either fail to decode or decode to an entry that encodes to the same
// bytes (one encoding per entry).
func FuzzSuppressEntry(f *testing.F) {
	seeds := []suppressEntry{
		{due: 70_000, seq: 3, ts: 65_000, hasNew: true, newV: []byte{0, 0, 0, 0, 0, 0, 0, 2}, hasOld: true, oldV: []byte{}},
		{due: -1, seq: 0, ts: 1, headers: streams.Headers{{Key: "h", Value: []byte("v")}, {Key: "", Value: nil}, {Key: "e", Value: []byte{}}}},
		{hasOld: true, oldV: []byte("old")},
	}
	for _, e := range seeds {
		b := e.append(nil)
		got, err := decodeSuppressEntry(b)
		if err != nil {
			f.Fatalf("decode %+v: %v", e, err)
		}
		if d := cmp.Diff(e, got, cmp.AllowUnexported(suppressEntry{}), cmpopts.EquateEmpty()); d != "" {
			f.Fatalf("round trip (-want +got):\n%s", d)
		}
		if !bytes.Equal(got.append(nil), b) {
			f.Fatalf("re-encoding %+v differs", got)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{suppressEntryVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeSuppressEntry(b)
		if err != nil {
			return
		}
		if out := e.append(nil); !bytes.Equal(out, b) {
			t.Fatalf("%x decodes to %+v, which encodes to %x", b, e, out)
		}
	})
}
