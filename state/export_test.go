package state

import "testing"

// CorruptCheckpointForTest overwrites the committed checkpoint of a closed
// store with bytes that do not decode.
func CorruptCheckpointForTest(t testing.TB, e *Engine, name string, partition int32) {
	t.Helper()
	v, c, err := e.db.Get(catalogKey(name, partition))
	if err != nil {
		t.Fatalf("catalog: %v", err)
	}
	id := uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3])
	_ = c.Close()
	if err := e.db.Set(metaKeyOf(id), []byte{9, 9, 9}, nil); err != nil {
		t.Fatal(err)
	}
}
