package batch

import (
	"fmt"
	"testing"
)

// TestCorruptCodes: each kind of problem carries its code, through
// wrapping, so a caller can tell a damaged batch from a refused one without
// validating again.
func TestCorruptCodes(t *testing.T) {
	control := func(t *testing.T) []byte {
		h := sampleHeader(1)
		h.Attributes |= attrControl
		b, err := Build(h, []Record{{Key: []byte{0, 0, 0, 0}, Value: []byte{0, 0, 0, 0, 0, 0}}}, CodecNone)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name     string
		batch    func(t *testing.T) []byte
		want     CorruptCode
		truncate bool
	}{
		{"bad crc", func(t *testing.T) []byte {
			b := validBatch(t, 2)
			b[len(b)-1] ^= 0xff
			return b
		}, CodeChecksum, false},
		{"bad magic", func(t *testing.T) []byte {
			b := validBatch(t, 2)
			b[posMagic] = 1
			return b
		}, CodeMalformed, false},
		{"cut short", func(t *testing.T) []byte {
			b := validBatch(t, 2)
			return b[:len(b)-3]
		}, CodeMalformed, true},
		{"control batch", control, CodeRefused, false},
		{"damaged control batch", func(t *testing.T) []byte {
			b := control(t)
			b[len(b)-1] ^= 0xff
			return b
		}, CodeChecksum, false},
		{"idempotent without a sequence", func(t *testing.T) []byte {
			h := sampleHeader(1)
			h.BaseSequence = -1
			b, err := Build(h, []Record{{Value: []byte("v")}}, CodecNone)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}, CodeRefused, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ValidateProduced(tc.batch(t))
			if err == nil {
				t.Fatal("ValidateProduced accepted the batch")
			}
			wrapped := fmt.Errorf("storage: batch at byte 0: %w", err)
			got, ok := CodeOf(wrapped)
			if !ok || got != tc.want {
				t.Fatalf("CodeOf(%v) = %v, %v; want %v", err, got, ok, tc.want)
			}
			if IsRefused(wrapped) != (tc.want == CodeRefused) {
				t.Fatalf("IsRefused(%v) = %v", err, IsRefused(wrapped))
			}
			if IsTruncated(wrapped) != tc.truncate {
				t.Fatalf("IsTruncated(%v) = %v, want %v", err, IsTruncated(wrapped), tc.truncate)
			}
		})
	}
	if _, ok := CodeOf(fmt.Errorf("not a batch problem")); ok {
		t.Fatal("CodeOf found a code in an unrelated error")
	}
}
