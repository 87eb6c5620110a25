package assign

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTasksRoundTrip(t *testing.T) {
	for _, ts := range [][]TaskID{nil, {{0, 0}}, {{3, 1000}, {0, 7}, {200, 0}}} {
		got, err := DecodeTasks(EncodeTasks(nil, ts))
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(ts, got, cmp.Comparer(func(a, b []TaskID) bool {
			return len(a) == len(b) && (len(a) == 0 || cmp.Equal(a, b))
		})); d != "" {
			t.Fatalf("round trip (-want +got):\n%s", d)
		}
	}
}

// FuzzDecodeTasks checks that any input either fails with ErrBadUserData or
// decodes to tasks whose encoding is exactly the input.
func FuzzDecodeTasks(f *testing.F) {
	f.Add([]byte{})
	f.Add(EncodeTasks(nil, []TaskID{{1, 2}, {0, 300}}))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{2, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := DecodeTasks(b)
		if err != nil {
			if !IsBadUserData(err) {
				t.Fatalf("error %v is not ErrBadUserData", err)
			}
			return
		}
		if len(b) == 0 {
			if len(ts) != 0 {
				t.Fatalf("empty input decoded to %v", ts)
			}
			return
		}
		// Uvarints have non-canonical forms (padded with 0x80 bytes), so
		// re-encoding may be shorter; it must decode to the same tasks.
		again, err := DecodeTasks(EncodeTasks(nil, ts))
		if err != nil {
			t.Fatalf("re-encoded tasks do not decode: %v", err)
		}
		if len(again) != len(ts) || (len(ts) > 0 && !cmp.Equal(again, ts)) {
			t.Fatalf("re-decoded %v, want %v", again, ts)
		}
		if enc := EncodeTasks(nil, ts); len(enc) > len(b) || (len(enc) == len(b) && !bytes.Equal(enc, b)) {
			t.Fatalf("canonical encoding %x is not the shortest form of %x", enc, b)
		}
	})
}
