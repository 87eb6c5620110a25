package app

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weir-dev/weir/state"
)

// fakeChangelog serves records [0, end) of a changelog whose record at
// offset o has key "o" (one byte), and records each Read.
type fakeChangelog struct {
	end   state.Offset
	reads [][2]state.Offset
}

func (f *fakeChangelog) Topic() string    { return "t" }
func (f *fakeChangelog) Partition() int32 { return 0 }
func (f *fakeChangelog) EndOffset(context.Context) (state.Offset, error) {
	return f.end, nil
}

func (f *fakeChangelog) Read(_ context.Context, from, to state.Offset, fn func([]state.ChangelogRecord) error) error {
	f.reads = append(f.reads, [2]state.Offset{from, to})
	var b []state.ChangelogRecord
	for o := from; o < min(to, f.end); o++ {
		b = append(b, state.ChangelogRecord{Offset: o, Key: []byte{byte(o)}})
	}
	return fn(b)
}

// TestHandoffReader: a restore through handoffReader gets the records a
// standby handed over, then only the changelog after them from the
// broker; a changelog that ends below the handed-over position (recreated)
// is read whole instead.
func TestHandoffReader(t *testing.T) {
	handed := []state.ChangelogRecord{{Offset: 2, Key: []byte{2}}, {Offset: 5, Key: []byte{5}}, {Offset: 9, Key: []byte{9}}}
	for _, tc := range []struct {
		name      string
		end       state.Offset
		want      []state.Offset
		wantReads [][2]state.Offset
	}{
		{"tail", 13, []state.Offset{2, 5, 9, 10, 11, 12}, [][2]state.Offset{{10, 13}}},
		{"no tail", 10, []state.Offset{2, 5, 9}, nil},
		{"recreated", 4, []state.Offset{0, 1, 2, 3}, [][2]state.Offset{{0, 4}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inner := &fakeChangelog{end: tc.end}
			r := handoffReader{ChangelogReader: inner, h: &memHandoff{records: handed, next: 10}}
			var got []state.Offset
			err := r.Read(context.Background(), 0, tc.end, func(b []state.ChangelogRecord) error {
				for _, rec := range b {
					got = append(got, rec.Offset)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("offsets read (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantReads, inner.reads); diff != "" {
				t.Errorf("broker reads (-want +got):\n%s", diff)
			}
		})
	}
}
