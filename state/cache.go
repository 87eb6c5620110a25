package state

// Cache is the write-back cache of one task: every cached store of the task
// keeps its dirty entries here until Flush, so a key updated many times
// between commits reaches the store, the changelog and downstream once. When
// the engine's cache budget fills, the least recently used entries are
// flushed early (their listeners are called then). Create one per task with
// Engine.NewCache. Like the stores, a Cache belongs to the task's goroutine.
type Cache struct {
	e *Engine
}

// NewCache returns a new, empty write-back cache for one task. Its memory is
// counted against the engine's budget.
func (e *Engine) NewCache() *Cache { return &Cache{e: e} }

// KeyValue returns s wrapped by the cache; listener (may be nil) is called
// once per changed key when the key's entry is flushed or evicted. s must
// be a store opened by an Engine.
func (c *Cache) KeyValue(s KeyValueStore, listener KeyValueFlushListener) (KeyValueStore, error) {
	return nil, ErrNotImplemented
}

// Window returns s wrapped by the cache, as KeyValue.
func (c *Cache) Window(s WindowStore, listener WindowFlushListener) (WindowStore, error) {
	return nil, ErrNotImplemented
}

// Session returns s wrapped by the cache, as KeyValue.
func (c *Cache) Session(s SessionStore, listener SessionFlushListener) (SessionStore, error) {
	return nil, ErrNotImplemented
}
