package stateengine_test

import (
	"context"
	"testing"

	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/state/statetest"
)

// FuzzRestoreRecord feeds an arbitrary changelog record to the restore of
// each kind of store: it is applied, or reported as a ChangelogDecodeError
// naming its offset; never a panic. An applied window or session record can
// be read back.
func FuzzRestoreRecord(f *testing.F) {
	f.Add(uint8(0), []byte("k\x00\x00\x00\x00\x00\x00\x00\x05"), []byte("v"))
	f.Add(uint8(1), []byte("k"), []byte("v"))
	f.Add(uint8(2), []byte("user\x00\x00\x00\x00\x00\x00\x00\x09\x00\x00\x00\x00\x00\x00\x00\x01"), []byte{})
	f.Fuzz(func(t *testing.T, kind uint8, key, value []byte) {
		ctx := context.Background()
		e := testEngine(t, nil)
		cl := statetest.NewChangelog("fuzz-changelog", 2)
		cl.AppendRaw(key, value)
		var s state.Store
		var err error
		switch kind % 3 {
		case 0:
			s, err = e.OpenWindow(ctx, state.Spec{Name: "w", InMemory: true}, 0, cl)
		case 1:
			s, err = e.OpenKeyValue(ctx, state.Spec{Name: "kv", InMemory: true}, 0, cl)
		default:
			s, err = e.OpenSession(ctx, state.Spec{Name: "s", InMemory: true}, 0, cl)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		_, err = stateengine.Restore(ctx, s, cl)
		if err != nil && !stateengine.IsChangelogDecode(err) {
			t.Fatalf("restore error %v is not a ChangelogDecodeError", err)
		}
		if err != nil {
			return
		}
		if kv, ok := s.(state.KeyValueStore); ok && len(key) > 0 && value != nil {
			got, gerr := kv.Get(key)
			if gerr != nil || string(got) != string(value) {
				t.Fatalf("restored %q = %q, %v; want %q", key, got, gerr, value)
			}
		}
	})
}
