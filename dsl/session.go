package dsl

import (
	"time"

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
	ss         writeBackSession
	ctx        streams.ProcessorContext[Windowed[K], Change[VA]]
	merged     []session[VA]
	// recs holds, per key written since the last write-back, the tag of
	// the key's writes: each record of the key updates it in place, so all
	// the key's sessions are forwarded with its latest record (the cause
	// of all of them when a commit follows every record). wrote is set by
	// the hook; the next record clears recs. NB: an eviction writing back
	// some of a key's sessions clears it too: the key's sessions still
	// cached then keep the record of their own last write.
	recs  map[string]*fwdRec[K]
	wrote bool
	// through and cur are kvChanges': with a write-through view, the hook
	// forwards cur, the change being written (a removed session's
	// deletion, or the new session).
	through bool
	cur     Change[VA]
}

func (p *sessionAggregate[K, V, VA]) Init(ctx streams.ProcessorContext[Windowed[K], Change[VA]]) (err error) {
	p.ctx = ctx
	if p.ss, err = openWriteBackSession(ctx, p.store); err != nil {
		return err
	}
	p.ss.OnWriteBack(p.wroteBack)
	_, p.through = p.ss.(*throughSession)
	p.recs = map[string]*fwdRec[K]{}
	return nil
}

// wroteBack forwards a session's change when the store writes it back: a
// removed (merged) session as a deletion, a new or grown one as its new
// value. A session removed and put again since its last write-back (a
// record inside it; the tag says so) forwards both, the deletion first, as
// the write-through path does. Through a write-through view the hook runs
// for each write and forwards cur.
func (p *sessionAggregate[K, V, VA]) wroteBack(kb []byte, start, end int64, nb, ob []byte, tag any) error {
	p.wrote = true
	pr, _ := tag.(*fwdRec[K])
	if pr == nil {
		var err error
		if pr, err = keyRec(p.ks, p.store, kb, p.ctx.StreamTime()); err != nil {
			return err
		}
	}
	rewritten := false
	for i, w := range pr.rewritten {
		if w == [2]int64{start, end} {
			rewritten = true
			pr.rewritten = append(pr.rewritten[:i], pr.rewritten[i+1:]...)
			break
		}
	}
	key := sessionKey(pr.key, start, end)
	if p.through {
		return p.ctx.Forward(streams.Record[Windowed[K], Change[VA]]{Key: key, Value: p.cur, Timestamp: pr.ts, Headers: pr.headers})
	}
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
	if p.wrote {
		clear(p.recs)
		p.wrote = false
	}
	pr := p.recs[string(kb)]
	if pr == nil {
		pr = &fwdRec[K]{}
		p.recs[string(kb)] = pr
	}
	pr.key, pr.ts, pr.headers = r.Key, r.Timestamp, r.Headers
	if start != ts || end != ts {
		for _, s := range p.merged {
			if s.start == start && s.end == end {
				pr.rewritten = append(pr.rewritten, [2]int64{start, end})
			}
			p.cur = Change[VA]{Old: s.agg, HasOld: true}
			if err := p.ss.RemoveTagged(kb, s.start, s.end, pr); err != nil {
				return err
			}
		}
	}
	agg = p.add(r.Key, r.Value, agg)
	vb, err := p.as.Serialize(p.store, agg)
	if err != nil {
		return err
	}
	p.cur = Change[VA]{New: agg, HasNew: true}
	err = p.ss.PutTagged(kb, start, end, vb, pr)
	p.cur = Change[VA]{}
	return err
}

func (p *sessionAggregate[K, V, VA]) Close() error { return nil }
