package serde_test

import (
	"bytes"
	"math"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/weir-dev/weir/serde"
)

type order struct {
	ID     string
	Amount int64
	Tags   []string
}

func roundTrip[T any](t *testing.T, s serde.Serde[T], v T) {
	t.Helper()
	b, err := s.Serialize("topic", v)
	if err != nil {
		t.Fatalf("serialize %v: %v", v, err)
	}
	got, err := s.Deserialize("topic", b)
	if err != nil {
		t.Fatalf("deserialize %x: %v", b, err)
	}
	if d := cmp.Diff(v, got); d != "" {
		t.Fatalf("round trip (-want +got):\n%s", d)
	}
	// AppendTo gives Serialize's bytes after what dst held, with or
	// without an Appender.
	prefix := []byte("prefix")
	a, err := serde.AppendTo(s, append([]byte(nil), prefix...), "topic", v)
	if err != nil {
		t.Fatalf("append %v: %v", v, err)
	}
	if d := cmp.Diff(append(prefix, b...), a); d != "" {
		t.Fatalf("AppendTo (-want +got):\n%s", d)
	}
	// An Encoder does the same, and Appends tells whether s has an
	// Appender.
	enc := serde.NewEncoder(s)
	e, err := enc.Append(append([]byte(nil), prefix...), "topic", v)
	if err != nil {
		t.Fatalf("encoder append %v: %v", v, err)
	}
	if d := cmp.Diff(append(prefix, b...), e); d != "" {
		t.Fatalf("Encoder.Append (-want +got):\n%s", d)
	}
	if _, ok := s.(serde.Appender[T]); enc.Appends() != ok {
		t.Fatalf("Encoder.Appends() = %v for a serde with Appender %v", enc.Appends(), ok)
	}
}

func TestRoundTrips(t *testing.T) {
	roundTrip(t, serde.String(), "héllo")
	roundTrip(t, serde.Bytes(), []byte{0, 1, 2})
	for _, v := range []int64{math.MinInt64, -1, 0, 1, math.MaxInt64} {
		roundTrip(t, serde.Int64(), v)
		roundTrip(t, serde.OrderedInt64(), v)
	}
	roundTrip(t, serde.Uint64(), uint64(math.MaxUint64))
	roundTrip(t, serde.Float64(), 3.25)
	roundTrip(t, serde.JSON[order](), order{ID: "o1", Amount: 5, Tags: []string{"a"}})
	roundTrip(t, serde.Msgpack[order](), order{ID: "o1", Amount: 5, Tags: []string{"a"}})
	roundTrip(t, serde.Msgpack[map[string]int](), map[string]int{"x": 1})
}

func TestKafkaCompatibleEncodings(t *testing.T) {
	b, _ := serde.Int64().Serialize("", 1)
	if !bytes.Equal(b, []byte{0, 0, 0, 0, 0, 0, 0, 1}) {
		t.Fatalf("int64 1 = %x, want Kafka's big-endian", b)
	}
	b, _ = serde.Int64().Serialize("", -1)
	if !bytes.Equal(b, bytes.Repeat([]byte{0xff}, 8)) {
		t.Fatalf("int64 -1 = %x", b)
	}
}

func TestOrderedInt64SortsLikeNumbers(t *testing.T) {
	vals := []int64{math.MinInt64, -5, -1, 0, 1, 7, math.MaxInt64}
	for i := 1; i < len(vals); i++ {
		a, _ := serde.OrderedInt64().Serialize("", vals[i-1])
		b, _ := serde.OrderedInt64().Serialize("", vals[i])
		if bytes.Compare(a, b) >= 0 {
			t.Fatalf("%d does not sort before %d", vals[i-1], vals[i])
		}
	}
}

func TestDecodeErrorsNameWhatFailed(t *testing.T) {
	_, err := serde.Int64().Deserialize("orders", []byte{1, 2, 3})
	if !serde.IsDecode(err) || !strings.Contains(err.Error(), "int64") || !strings.Contains(err.Error(), `"orders"`) {
		t.Fatalf("int64 decode error %v", err)
	}
	_, err = serde.Msgpack[order]().Deserialize("orders", []byte{0xc1})
	if !serde.IsDecode(err) || !strings.Contains(err.Error(), "msgpack[serde_test.order]") {
		t.Fatalf("msgpack decode error %v", err)
	}
	_, err = serde.JSON[order]().Deserialize("orders", []byte("{"))
	if !serde.IsDecode(err) || !strings.Contains(err.Error(), "json[serde_test.order]") {
		t.Fatalf("json decode error %v", err)
	}
}

// TestMsgpackHostileLengthRefused: a 13-byte record whose slice field
// claims 2^28 elements is a decode error naming where, and the decoder
// never allocates for the claim (msgpack/v5 sizes a typed slice from its
// header).
func TestMsgpackHostileLengthRefused(t *testing.T) {
	type items struct{ Items []int64 }
	b := []byte{0x81, 0xa5, 'I', 't', 'e', 'm', 's', 0xdd, 0x10, 0, 0, 0, 1}
	s := serde.Msgpack[items]()
	var err error
	allocs := testing.AllocsPerRun(10, func() { _, err = s.Deserialize("orders", b) })
	if !serde.IsDecode(err) || !strings.Contains(err.Error(), "declares 268435456") || !strings.Contains(err.Error(), `"orders"`) {
		t.Fatalf("hostile record: %v", err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	_, _ = s.Deserialize("orders", b)
	runtime.ReadMemStats(&ms)
	if grew := ms.TotalAlloc - before; grew > 1<<20 {
		t.Fatalf("decoding 13 bytes allocated %d bytes (%v allocations)", grew, allocs)
	}
}

func TestNilDecodesToZero(t *testing.T) {
	v, err := serde.Msgpack[order]().Deserialize("t", nil)
	if err != nil || v.ID != "" {
		t.Fatalf("nil: %+v %v", v, err)
	}
	n, err := serde.Int64().Deserialize("t", nil)
	if err != nil || n != 0 {
		t.Fatalf("nil int64: %d %v", n, err)
	}
}

// The fuzz targets feed arbitrary bytes to each decoder: it must either
// fail with a DecodeError or produce a value that re-encodes and decodes to
// itself.

func fuzzDecoder[T any](f *testing.F, s serde.Serde[T], seeds ...[]byte) {
	for _, b := range seeds {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := s.Deserialize("fuzz", b)
		if err != nil {
			if !serde.IsDecode(err) {
				t.Fatalf("error %v is not a DecodeError", err)
			}
			return
		}
		again, err := s.Serialize("fuzz", v)
		if err != nil {
			t.Fatalf("decoded value %v does not re-encode: %v", v, err)
		}
		v2, err := s.Deserialize("fuzz", again)
		if err != nil {
			t.Fatalf("re-encoded %x does not decode: %v", again, err)
		}
		if d := cmp.Diff(v, v2); d != "" {
			t.Fatalf("decode/encode/decode changed the value (-first +second):\n%s", d)
		}
	})
}

func FuzzMsgpack(f *testing.F) {
	b, _ := serde.Msgpack[order]().Serialize("", order{ID: "x", Amount: -3, Tags: []string{"t"}})
	fuzzDecoder(f, serde.Msgpack[order](), b, []byte{0x80}, []byte{0xc1})
}

func FuzzJSON(f *testing.F) {
	fuzzDecoder(f, serde.JSON[order](), []byte(`{"ID":"a","Amount":1}`), []byte(`[]`))
}

func FuzzInt64(f *testing.F) {
	fuzzDecoder(f, serde.Int64(), []byte{1, 2, 3, 4, 5, 6, 7, 8}, []byte{1})
}

func FuzzOrderedInt64(f *testing.F) {
	fuzzDecoder(f, serde.OrderedInt64(), []byte{0x80, 0, 0, 0, 0, 0, 0, 0})
}

// The String serde's DeserializeAlias gives Deserialize's string without a
// copy: it shares the bytes it decodes (and so changes with them, which is
// why callers use it only for bytes nobody writes again).
func TestStringDeserializeAliasSharesBytes(t *testing.T) {
	s := serde.String()
	a, ok := s.(serde.AliasDecoder[string])
	if !ok {
		t.Fatal("the String serde does not implement AliasDecoder")
	}
	b := []byte("customer-42")
	v, err := a.DeserializeAlias("t", b)
	if err != nil || v != "customer-42" {
		t.Fatalf("DeserializeAlias = %q, %v", v, err)
	}
	if unsafe.StringData(v) != &b[0] {
		t.Error("DeserializeAlias copied the bytes")
	}
	copied, _ := s.Deserialize("t", b)
	b[0] = 'C'
	if v != "Customer-42" || copied != "customer-42" {
		t.Errorf("after writing the bytes: alias %q (want Customer-42), copy %q (want customer-42)", v, copied)
	}
	for _, empty := range [][]byte{nil, {}} {
		if v, err := a.DeserializeAlias("t", empty); v != "" || err != nil {
			t.Errorf("DeserializeAlias(%v) = %q, %v", empty, v, err)
		}
	}
}

// DeserializeAlias decodes any bytes to what Deserialize gives.
func FuzzStringAlias(f *testing.F) {
	f.Add([]byte("héllo"))
	f.Add([]byte{0xff, 0})
	a := serde.String().(serde.AliasDecoder[string])
	f.Fuzz(func(t *testing.T, b []byte) {
		want, err := serde.String().Deserialize("fuzz", b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := a.DeserializeAlias("fuzz", b)
		if err != nil || got != want {
			t.Fatalf("DeserializeAlias(%x) = %q, %v; Deserialize gives %q", b, got, err, want)
		}
	})
}

// The msgpack serde's kept coders change nothing: its bytes are
// msgpack.Marshal's, and a value decoded after another keeps nothing of
// it (a field the bytes lack stays zero, a map is not merged into).
func TestMsgpackCodersKeepNothing(t *testing.T) {
	s := serde.Msgpack[order]()
	full := order{ID: "o1", Amount: 5, Tags: []string{"a", "b"}}
	b, err := s.Serialize("t", full)
	if err != nil {
		t.Fatal(err)
	}
	want, err := msgpack.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("Serialize = %x, msgpack.Marshal = %x", b, want)
	}
	if _, err := s.Deserialize("t", b); err != nil {
		t.Fatal(err)
	}
	// Only an ID: a fixmap of one entry.
	only, err := msgpack.Marshal(map[string]any{"ID": "o2"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Deserialize("t", only)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(order{ID: "o2"}, got); d != "" {
		t.Fatalf("decoded after a full value (-want +got):\n%s", d)
	}
	m := serde.Msgpack[map[string]int]()
	mb, _ := m.Serialize("t", map[string]int{"x": 1})
	if _, err := m.Deserialize("t", mb); err != nil {
		t.Fatal(err)
	}
	yb, _ := m.Serialize("t", map[string]int{"y": 2})
	gm, err := m.Deserialize("t", yb)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]int{"y": 2}, gm); d != "" {
		t.Fatalf("map decoded after another (-want +got):\n%s", d)
	}
	// An encode error leaves dst as it was.
	bad := serde.Msgpack[chan int]()
	dst := []byte("keep")
	out, err := bad.(serde.Appender[chan int]).Append(dst, "t", make(chan int))
	if err == nil || string(out) != "keep" {
		t.Fatalf("Append of a channel = %q, %v; want the dst unchanged and an error", out, err)
	}
}
