package stateengine

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
)

// testSeed returns a random seed, or $STATE_TEST_SEED to replay a failure,
// and logs it. Tests of package stateengine_test reach it as TestSeedForTest.
func testSeed(t testing.TB) uint64 {
	t.Helper()
	seed := rand.Uint64()
	if s := os.Getenv("STATE_TEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("STATE_TEST_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with STATE_TEST_SEED=%d)", seed, seed)
	return seed
}

// TestSeedForTest is testSeed for the external test package.
var TestSeedForTest = testSeed

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

// SetWriteCacheForTest sets the bytes all write-back caches of e may hold
// together, so that a test's few entries are evicted.
func SetWriteCacheForTest(e *Engine, n int64) { e.split.writeCache = n }
