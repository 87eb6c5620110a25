package dsl

import (
	"time"

	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
)

// SessionWindowedKStream is a grouped stream cut into sessions.
type SessionWindowedKStream[K, V any] struct {
	g KGroupedStream[K, V]
	w SessionWindows
}

// WindowedBySession cuts the grouped stream into session windows.
func (g KGroupedStream[K, V]) WindowedBySession(w SessionWindows) SessionWindowedKStream[K, V] {
	return SessionWindowedKStream[K, V]{g: g, w: w}
}

// Count counts the records per key and session.
func (s SessionWindowedKStream[K, V]) Count(opts ...Opt) WindowedKTable[K, int64] {
	opts = append([]Opt{ValueSerde(serde.Int64())}, opts...)
	return SessionAggregate(s, func() int64 { return 0 },
		func(_ K, _ V, n int64) int64 { return n + 1 },
		func(_ K, a, b int64) int64 { return a + b }, opts...)
}

// SessionAggregate folds the values per key and session. When a record
// bridges sessions, they merge: merge combines their aggregates. Each
// update forwards a deletion of every session it replaced, then the new
// session (keys carry the session's first and last record timestamps).
// Behind the task's write-back cache these are forwarded when the cache
// flushes (each commit): once per session, sessions created and merged
// away between two commits not at all. A
// record whose session ended before stream time minus grace is dropped and
// counted as "<node>: late".
func SessionAggregate[K, V, VA any](s SessionWindowedKStream[K, V], init func() VA, add func(k K, v V, agg VA) VA, merge func(k K, a, b VA) VA, opts ...Opt) WindowedKTable[K, VA] {
	c := s.g.s.b.config("SessionAggregate", opts, takesStore)
	b := s.g.s.b
	name := b.name(c.name, "session-aggregate")
	store := storeNameFor(c, name)
	as := pick[VA](c.valSerde, nil)
	parent := s.g.s.node
	w := s.w
	b.add(func(t *streams.Topology) {
		if w.gap <= 0 || w.grace < 0 {
			b.fail(name, "session windows need a positive gap and a non-negative grace", "fix the window definition")
			return
		}
		ks, as := resolve(b, s.g.s.ks), resolve(b, as)
		if ks == nil || as == nil {
			b.missing(t, name, ks == nil, as == nil)
		}
		streams.AddProcessor(t, name, func() streams.Processor[K, V, Windowed[K], Change[VA]] {
			return &sessionAggregate[K, V, VA]{store: store, ks: ks, as: as, init: init, add: add, merge: merge,
				gap: w.gap.Milliseconds(), grace: w.grace.Milliseconds()}
		}, parent)
		t.AddStore(streams.StoreSpec{Spec: state.Spec{Name: store, Kind: state.KindSession, InMemory: c.inMemory,
			Retention: w.gap + w.grace}}, name)
	})
	var ks serde.Serde[Windowed[K]]
	if s.g.s.ks != nil {
		ks = SessionWindowedSerde(s.g.s.ks)
	} else {
		ks = lazySession[K]{b: b}
	}
	return WindowedKTable[K, VA]{b: b, node: name, ks: ks, vs: as, store: store, topics: s.g.s.topics,
		windowEnd: func(k Windowed[K]) int64 { return k.Window.End.UnixMilli() }, grace: w.grace}
}

type lazySession[K any] struct{ b *Builder }

func (l lazySession[K]) Serialize(topic string, v Windowed[K]) ([]byte, error) {
	return SessionWindowedSerde(resolve[K](l.b, nil)).Serialize(topic, v)
}
func (l lazySession[K]) Deserialize(topic string, b []byte) (Windowed[K], error) {
	return SessionWindowedSerde(resolve[K](l.b, nil)).Deserialize(topic, b)
}

type session[VA any] struct {
	start, end int64
	agg        VA
}

type sessionAggregate[K, V, VA any] struct {
	store      string
	ks         serde.Serde[K]
	as         serde.Serde[VA]
	init       func() VA
	add        func(K, V, VA) VA
	merge      func(K, VA, VA) VA
	gap, grace int64
	ss         state.SessionStore
	ctx        streams.ProcessorContext[Windowed[K], Change[VA]]
	merged     []session[VA]
	// cached and pending are kvAggregate's, with one pending slot per key
	// (not per session), kept live: a flush writes back several sessions of
	// a key (merged ones and the new one), each forwarded with the key's
	// latest input record, which is the cause of all of them when a commit
	// follows every record.
	cached  bool
	pending *pendingTable[K]
}

func (p *sessionAggregate[K, V, VA]) Init(ctx streams.ProcessorContext[Windowed[K], Change[VA]]) error {
	p.ctx = ctx
	s, err := ctx.Store(p.store)
	if err != nil {
		return err
	}
	ss, ok := s.(state.SessionStore)
	if !ok {
		return &streams.TopologyError{Node: p.store, Problem: "store is not a session store"}
	}
	p.ss = ss
	p.cached = stateengine.SetSessionFlushListener(ss, p.flushed)
	if p.cached {
		p.pending = newPendingTable[K]()
	}
	return nil
}

// flushed forwards a session's change when the cache writes it back: a
// removed (merged) session as a deletion, a new or grown one as its new
// value, as the uncached path forwards them. A session removed and put
// again since its last flush (a record inside it) forwards both, the
// deletion first.
func (p *sessionAggregate[K, V, VA]) flushed(kb []byte, start, end int64, nb, ob []byte) error {
	var pr pendingRec[K]
	rewritten := false
	if e := p.pending.peek(kb, 0, 0); e != nil {
		pr = *e
		for i, w := range e.rewritten {
			if w == [2]int64{start, end} {
				rewritten = true
				e.rewritten = append(e.rewritten[:i], e.rewritten[i+1:]...)
				break
			}
		}
	} else {
		k, err := p.ks.Deserialize(p.store, kb)
		if err != nil {
			return err
		}
		pr = pendingRec[K]{key: k, ts: p.ctx.StreamTime()}
	}
	key := sessionKey(pr.key, start, end)
	if ob != nil && (nb == nil || rewritten) {
		old, err := p.as.Deserialize(p.store, ob)
		if err != nil {
			return err
		}
		if err := p.ctx.Forward(streams.Record[Windowed[K], Change[VA]]{Key: key, Value: Change[VA]{Old: old, HasOld: true},
			Timestamp: pr.ts, Headers: pr.headers}); err != nil {
			return err
		}
	}
	if nb == nil {
		return nil
	}
	agg, err := p.as.Deserialize(p.store, nb)
	if err != nil {
		return err
	}
	return p.ctx.Forward(streams.Record[Windowed[K], Change[VA]]{Key: key, Value: Change[VA]{New: agg, HasNew: true},
		Timestamp: pr.ts, Headers: pr.headers})
}

func sessionKey[K any](k K, start, end int64) Windowed[K] {
	return Windowed[K]{Key: k, Window: Window{Start: time.UnixMilli(start), End: time.UnixMilli(end)}}
}

func (p *sessionAggregate[K, V, VA]) Process(r streams.Record[K, V]) error {
	ts := r.Timestamp.UnixMilli()
	closeTime := p.ctx.StreamTime().UnixMilli() - p.grace
	kb, err := p.ks.Serialize(p.store, r.Key)
	if err != nil {
		return err
	}
	it, err := p.ss.FindSessions(kb, ts-p.gap, ts+p.gap)
	if err != nil {
		return err
	}
	start, end := ts, ts
	agg := p.init()
	p.merged = p.merged[:0]
	for it.Next() {
		v, err := p.as.Deserialize(p.store, it.Value())
		if err != nil {
			it.Close()
			return err
		}
		s := session[VA]{start: it.Start(), end: it.End(), agg: v}
		p.merged = append(p.merged, s)
		agg = p.merge(r.Key, agg, v)
		start, end = min(start, s.start), max(end, s.end)
	}
	if err := it.Close(); err != nil {
		return err
	}
	if end < closeTime {
		p.ctx.RecordDropped(streams.DropLate)
		return nil
	}
	if start != ts || end != ts {
		if p.cached {
			// NB: before the writes, which may evict and flush at once.
			e := p.pending.put(kb, 0, 0, r.Key, r.Timestamp, r.Headers)
			for _, s := range p.merged {
				if s.start == start && s.end == end {
					e.rewritten = append(e.rewritten, [2]int64{start, end})
				}
			}
		}
		for _, s := range p.merged {
			if p.cached {
				if err := p.ss.Remove(kb, s.start, s.end); err != nil {
					return err
				}
				continue
			}
			if err := p.ss.Remove(kb, s.start, s.end); err != nil {
				return err
			}
			if err := p.ctx.Forward(streams.Record[Windowed[K], Change[VA]]{Key: sessionKey(r.Key, s.start, s.end),
				Value: Change[VA]{Old: s.agg, HasOld: true}, Timestamp: r.Timestamp, Headers: r.Headers}); err != nil {
				return err
			}
		}
	}
	agg = p.add(r.Key, r.Value, agg)
	vb, err := p.as.Serialize(p.store, agg)
	if err != nil {
		return err
	}
	if p.cached {
		p.pending.put(kb, 0, 0, r.Key, r.Timestamp, r.Headers)
		return p.ss.Put(kb, start, end, vb)
	}
	if err := p.ss.Put(kb, start, end, vb); err != nil {
		return err
	}
	return p.ctx.Forward(streams.Record[Windowed[K], Change[VA]]{Key: sessionKey(r.Key, start, end),
		Value: Change[VA]{New: agg, HasNew: true}, Timestamp: r.Timestamp, Headers: r.Headers})
}

func (p *sessionAggregate[K, V, VA]) Close() error { return nil }
