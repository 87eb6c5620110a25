package stateengine

// memMeta keeps the meta of an in-memory store, whose data the store keeps
// itself (memBackend, memTimed). Commit only records the meta: an
// in-memory store does not survive its process, so there is nothing to
// make durable or atomic.
type memMeta struct {
	m meta
}

func (b *memMeta) pending() int            { return 0 }
func (b *memMeta) commit(m meta) error     { b.m = m; return nil }
func (b *memMeta) loadMeta() (meta, error) { return b.m, nil }
func (b *memMeta) wipe() error             { b.m = zeroMeta; return nil }
func (b *memMeta) bulk()                   {}
func (b *memMeta) close() error            { return nil }
