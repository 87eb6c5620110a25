package serde_test

import (
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/weir-dev/weir/serde"
)

// BenchmarkMsgpackSerialize: the default value serde appending into a kept
// buffer ("append", what sinks and stores do) and serializing ("serialize")
// beside msgpack.Marshal alone ("marshal", how the serde encoded before it
// kept coders) in one run.
func BenchmarkMsgpackSerialize(b *testing.B) {
	s := serde.Msgpack[order]()
	v := order{ID: "o-123456", Amount: 4200, Tags: []string{"express", "gift"}}
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		a := s.(serde.Appender[order])
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = a.Append(buf[:0], "orders", v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("serialize", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Serialize("orders", v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := msgpack.Marshal(v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMsgpackDeserialize: the default value serde on an order
// ("checked", with the well-formedness walk that bounds what the decoder
// may allocate) beside msgpack.Unmarshal alone ("decoder", how the serde decoded before it kept coders) in one run.
func BenchmarkMsgpackDeserialize(b *testing.B) {
	s := serde.Msgpack[order]()
	v, err := s.Serialize("", order{ID: "o-123456", Amount: 4200, Tags: []string{"express", "gift"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("checked", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Deserialize("orders", v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decoder", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var o order
			if err := msgpack.Unmarshal(v, &o); err != nil {
				b.Fatal(err)
			}
		}
	})
}
