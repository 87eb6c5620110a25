package state_test

import (
	"testing"

	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/state"
)

// FuzzTimestamped checks the timestamped value decoder.
func FuzzTimestamped(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 'x'})
	f.Add([]byte{1})
	s := state.Timestamped(serde.String())
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := s.Deserialize("t", b)
		if err != nil {
			if !serde.IsDecode(err) {
				t.Fatalf("error %v is not a DecodeError", err)
			}
			return
		}
		again, err := s.Serialize("t", v)
		if err != nil || string(again) != string(b) && b != nil {
			t.Fatalf("re-encoding %x gave %x, %v", b, again, err)
		}
	})
}
