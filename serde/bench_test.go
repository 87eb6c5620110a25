package serde_test

import (
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/weir-dev/weir/serde"
)

// BenchmarkMsgpackDeserialize: the default value serde on an order
// ("checked", with the well-formedness walk that bounds what the decoder
// may allocate) beside msgpack.Unmarshal alone ("decoder") in one run.
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
