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
	if err := e.db.Set(dataKeyPrefix(id), []byte{9, 9, 9}, nil); err != nil {
		t.Fatal(err)
	}
}

// SetRestoreChunkForTest makes restores on e commit (on Pebble: ingest an
// SSTable) every n bytes, so that small changelogs span many chunks. Call
// it before opening stores.
func SetRestoreChunkForTest(e *Engine, n int64) {
	e.split.restoreChunk = n
	e.sst.chunkBytes = int(n)
}

// FlushMemtablesForTest writes Pebble's memtables to SSTables.
func FlushMemtablesForTest(e *Engine) error { return e.db.Flush() }
