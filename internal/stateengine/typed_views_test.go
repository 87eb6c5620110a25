package stateengine_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/state/statetest"
)

func TestTypedKeyValueIteration(t *testing.T) {
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) {
			testTypedKeyValueIteration(t, state.NewTypedKeyValue(im.kv(t, testEngine(t, nil), statetest.NewChangelog("kv-changelog", 0)), serde.String(), serde.Int64()))
		})
	}
}

func testTypedKeyValueIteration(t *testing.T, mem *state.TypedKeyValue[string, int64]) {
	for i, k := range []string{"c", "a", "d", "b"} {
		if err := mem.Put(k, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	for e, err := range mem.All() {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, e.Key)
		if e.Key == "c" {
			break
		}
	}
	if diff := cmp.Diff([]string{"a", "b", "c"}, keys); diff != "" {
		t.Errorf("All with a break (-want +got):\n%s", diff)
	}
	keys = nil
	for e, err := range mem.Range("b", "d") {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, e.Key)
	}
	if diff := cmp.Diff([]string{"b", "c"}, keys); diff != "" {
		t.Errorf("Range [b, d) (-want +got):\n%s", diff)
	}
	// A value that does not decode is yielded as an error naming the store
	// and key, once, and ends the iteration.
	if err := mem.Store.Put([]byte("bad"), []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	var errs []error
	n := 0
	for _, err := range mem.All() {
		n++
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `"bad"`) || n != 3 {
		t.Errorf("undecodable value: %d yields, errors %v; want a, b, then one error naming \"bad\"", n, errs)
	}
}
