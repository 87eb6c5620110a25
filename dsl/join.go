package dsl

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
)

// JoinWindows bound a stream-stream join: a left record at t joins right
// records in [t-before, t+after].
type JoinWindows struct {
	before, after, grace time.Duration
}

// JoinWindowsOf joins records at most d apart, with no grace.
func JoinWindowsOf(d time.Duration) JoinWindows { return JoinWindows{before: d, after: d} }

// Before returns w with the left record joining right records up to d
// earlier.
func (w JoinWindows) Before(d time.Duration) JoinWindows {
	w.before = d
	return w
}

// After returns w with the left record joining right records up to d later.
func (w JoinWindows) After(d time.Duration) JoinWindows {
	w.after = d
	return w
}

// Grace returns w accepting out-of-order records until stream time passes
// their window's end plus d; later records are dropped and counted as
// "<node>: late". A left or outer join emits a record's unmatched result
// once its window has closed. Default 0.
func (w JoinWindows) Grace(d time.Duration) JoinWindows {
	w.grace = d
	return w
}

// Join is the inner stream-stream join: for each pair of records with equal
// keys within the window, it emits joiner(left, right) with the larger of
// their timestamps. Streams whose key may have changed are repartitioned
// first; the two input topics must be co-partitioned.
// Opts: Named, InMemory, and KeySerde/ValueSerde for the left side's stores.
func Join[K, V1, V2, VR any](left KStream[K, V1], right KStream[K, V2], joiner func(l V1, r V2) VR, w JoinWindows, opts ...Opt) KStream[K, VR] {
	return streamJoin(left, right, func(l *V1, r *V2) VR { return joiner(*l, *r) }, joinCopies{left: true, right: true}, w, false, false, "join", opts)
}

// LeftJoin is Join that also emits joiner(left, nil) for each left record
// that found no match once its window closes.
func LeftJoin[K, V1, V2, VR any](left KStream[K, V1], right KStream[K, V2], joiner func(l V1, r *V2) VR, w JoinWindows, opts ...Opt) KStream[K, VR] {
	return streamJoin(left, right, func(l *V1, r *V2) VR { return joiner(*l, r) }, joinCopies{left: true}, w, true, false, "left-join", opts)
}

// OuterJoin is LeftJoin that also emits joiner(nil, right) for unmatched
// right records.
func OuterJoin[K, V1, V2, VR any](left KStream[K, V1], right KStream[K, V2], joiner func(l *V1, r *V2) VR, w JoinWindows, opts ...Opt) KStream[K, VR] {
	return streamJoin(left, right, joiner, joinCopies{}, w, true, true, "outer-join", opts)
}

func joinInputs[K, V1, V2 any](b *Builder, name string, left KStream[K, V1], right KStream[K, V2], c opConfig) (KStream[K, V1], KStream[K, V2]) {
	ks := pick[K](c.keySerde, left.ks)
	if ks == nil {
		ks = right.ks
	}
	left = repartitionIfRekeyed(left, name+"-left", ks, left.vs)
	right = repartitionIfRekeyed(right, name+"-right", ks, right.vs)
	left.ks, right.ks = ks, ks
	topics := append(append([]string(nil), left.topics...), right.topics...)
	b.add(func(t *streams.Topology) { t.RequireCopartitioned(topics...) })
	return left, right
}

// joinCopies says which of its arguments a stream-stream join's joiner
// copies before it returns (Join's and LeftJoin's wrappers dereference
// them; a user's OuterJoin joiner may keep its pointers): a pointer to a
// copied argument may point at a variable the join reuses for the next
// record, which saves an allocation per record and per match.
type joinCopies struct{ left, right bool }

func streamJoin[K, V1, V2, VR any](left KStream[K, V1], right KStream[K, V2], joiner func(*V1, *V2) VR, copies joinCopies, w JoinWindows, leftOuter, rightOuter bool, kind string, opts []Opt) KStream[K, VR] {
	c := left.b.config(kind, opts, optName|optInMemory|optKeySerde|optValueSerde)
	b := left.b
	name := b.name(c.name, kind)
	left, right = joinInputs(b, name, left, right, c)
	lstore, rstore := name+"-left-store", name+"-right-store"
	lnode, rnode, merge := name+"-left", name+"-right", name+"-merge"
	outerStore := ""
	if leftOuter || rightOuter {
		outerStore = name + "-outer-store"
	}
	b.add(func(t *streams.Topology) {
		ks, v1s, v2s := resolve(b, left.ks), resolve(b, left.vs), resolve(b, right.vs)
		if ks == nil || v1s == nil || v2s == nil {
			b.missing(t, name, ks == nil, v1s == nil || v2s == nil)
		}
		retention := w.before + w.after + w.grace
		spec := func(n string) streams.StoreSpec {
			return streams.StoreSpec{Spec: state.Spec{Name: n, Kind: state.KindWindow, InMemory: c.inMemory, Retention: retention}}
		}
		streams.AddProcessor(t, lnode, func() streams.Processor[K, V1, K, VR] {
			return &streamJoinSide[K, V1, V2, VR]{own: lstore, other: rstore, ks: ks, vs: v1s, os: v2s,
				before: w.before.Milliseconds(), after: w.after.Milliseconds(), grace: w.grace.Milliseconds(),
				outer: leftOuter, otherOuter: rightOuter, outerStore: outerStore,
				reuseOwn: copies.left, reuseOther: copies.right,
				join: func(own *V1, other *V2) VR { return joiner(own, other) }}
		}, left.node)
		streams.AddProcessor(t, rnode, func() streams.Processor[K, V2, K, VR] {
			return &streamJoinSide[K, V2, V1, VR]{own: rstore, other: lstore, ks: ks, vs: v2s, os: v1s,
				before: w.after.Milliseconds(), after: w.before.Milliseconds(), grace: w.grace.Milliseconds(),
				outer: rightOuter, otherOuter: leftOuter, outerStore: outerStore, right: true,
				reuseOwn: copies.right, reuseOther: copies.left,
				join: func(own *V2, other *V1) VR { return joiner(other, own) }}
		}, right.node)
		streams.AddProcessor(t, merge, stateless(func(ctx streams.ProcessorContext[K, VR], r streams.Record[K, VR]) error {
			return ctx.Forward(r)
		}), lnode, rnode)
		t.AddStore(spec(lstore), lnode, rnode)
		t.AddStore(spec(rstore), lnode, rnode)
		if outerStore != "" {
			t.AddStore(kvSpec(outerStore, c), lnode, rnode)
		}
	})
	out := KStream[K, VR]{b: b, node: merge, ks: left.ks, vs: pick[VR](c.valSerde, nil)}
	out.topics = append(append([]string(nil), left.topics...), right.topics...)
	return out
}

// The records of a left or outer join still waiting for a partner live in
// a key-value store shared by the two sides of the task (logged like any
// store), keyed so that a range scan returns them in timestamp order:
// 8 bytes of timestamp (sign bit flipped, big endian), 1 byte of side
// (0 left, 1 right), then the serialized key. The value is the list of the
// records' serialized values (appendValue).
func outerKey(ts int64, right bool, kb []byte) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 9+len(kb)), uint64(ts)^(1<<63))
	side := byte(0)
	if right {
		side = 1
	}
	return append(append(b, side), kb...)
}

func parseOuterKey(b []byte) (ts int64, right bool, kb []byte, err error) {
	if len(b) < 9 || b[8] > 1 {
		return 0, false, nil, errors.New("dsl: corrupt outer join store key")
	}
	return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)), b[8] == 1, b[9:], nil
}

type streamJoinSide[K, VO, VT, VR any] struct {
	own, other           string
	ks                   serde.Serde[K]
	vs                   serde.Serde[VO]
	os                   serde.Serde[VT]
	before, after, grace int64 // the window as seen from this side
	outer, otherOuter    bool
	right                bool
	outerStore           string
	join                 func(own *VO, other *VT) VR

	ctx        streams.ProcessorContext[K, VR]
	ownStore   state.WindowStore
	otherStore state.WindowStore
	pending    state.KeyValueStore // unmatched records; nil for inner joins

	// kenc and venc encode the record's key and value into kbuf and vbuf,
	// and lbuf holds the window entry's list: stores keep nothing passed
	// to them, so one buffer each serves every record.
	kenc             serde.Encoder[K]
	venc             serde.Encoder[VO]
	kbuf, vbuf, lbuf []byte

	// reuseOwn and reuseOther are set when the joiner copies this side's
	// or the other side's value (joinCopies): the values it is given
	// then live in ownV and otherV, reused from record to record, instead
	// of a new allocation each (a pointer to a local escapes through the
	// joiner).
	reuseOwn, reuseOther bool
	ownV                 VO
	otherV               VT
}

// ownPtr returns a pointer to v for the joiner: to ownV when the joiner
// copies it, else to a new variable.
func (p *streamJoinSide[K, VO, VT, VR]) ownPtr(v VO) *VO { return valuePtr(p.reuseOwn, &p.ownV, v) }

// otherPtr is ownPtr for a value of the other side.
func (p *streamJoinSide[K, VO, VT, VR]) otherPtr(v VT) *VT {
	return valuePtr(p.reuseOther, &p.otherV, v)
}

// valuePtr returns a pointer to v: slot, holding v, when reuse is set,
// else a new variable.
func valuePtr[T any](reuse bool, slot *T, v T) *T {
	if reuse {
		*slot = v
		return slot
	}
	c := new(T)
	*c = v
	return c
}

// forget clears the reused values, so that the join keeps nothing of a
// record alive after it is processed.
func (p *streamJoinSide[K, VO, VT, VR]) forget() {
	var own VO
	var other VT
	p.ownV, p.otherV = own, other
}

func windowStore[K, V any](ctx streams.ProcessorContext[K, V], name string) (state.WindowStore, error) {
	s, err := ctx.Store(name)
	if err != nil {
		return nil, err
	}
	ws, ok := s.(state.WindowStore)
	if !ok {
		return nil, errors.New("dsl: store " + name + " is not a window store")
	}
	return ws, nil
}

func (p *streamJoinSide[K, VO, VT, VR]) Init(ctx streams.ProcessorContext[K, VR]) (err error) {
	p.ctx = ctx
	p.kenc, p.venc = serde.NewEncoder(p.ks), serde.NewEncoder(p.vs)
	if p.ownStore, err = windowStore(ctx, p.own); err != nil {
		return err
	}
	if p.otherStore, err = windowStore(ctx, p.other); err != nil {
		return err
	}
	if p.outerStore != "" {
		p.pending, err = kvStore(ctx, p.outerStore)
	}
	return err
}

func (p *streamJoinSide[K, VO, VT, VR]) Close() error { return nil }

// appendValue adds one length-prefixed value to a window entry's list.
func appendValue(list, v []byte) []byte {
	list = binary.AppendUvarint(list, uint64(len(v)))
	return append(list, v...)
}

func eachValue(list []byte, fn func(v []byte) error) error {
	for len(list) > 0 {
		n, k := binary.Uvarint(list)
		if k <= 0 || uint64(len(list)-k) < n {
			return errors.New("dsl: corrupt join window entry")
		}
		if err := fn(list[k : k+int(n)]); err != nil {
			return err
		}
		list = list[k+int(n):]
	}
	return nil
}

func (p *streamJoinSide[K, VO, VT, VR]) Process(r streams.Record[K, VO]) error {
	ts := r.Timestamp.UnixMilli()
	now := p.ctx.StreamTime().UnixMilli()
	if ts+p.after+p.grace < now {
		p.ctx.RecordDropped(streams.DropLate)
		return p.flushExpired(now)
	}
	kb, err := p.kenc.Append(p.kbuf[:0], p.own, r.Key)
	if err != nil {
		return err
	}
	p.kbuf = kb
	vb, err := p.venc.Append(p.vbuf[:0], p.own, r.Value)
	if err != nil {
		return err
	}
	p.vbuf = vb
	list, err := p.ownStore.Get(kb, ts)
	if err != nil {
		return err
	}
	p.lbuf = appendValue(append(p.lbuf[:0], list...), vb)
	if err := p.ownStore.Put(kb, ts, p.lbuf); err != nil {
		return err
	}
	it, err := p.otherStore.Fetch(kb, ts-p.before, ts+p.after, false)
	if err != nil {
		return err
	}
	matched := false
	var own *VO // r.Value for the joiner, made at the first match
	for it.Next() {
		ots := it.WindowStart()
		err := eachValue(it.Value(), func(b []byte) error {
			ov, err := p.os.Deserialize(p.other, b)
			if err != nil {
				return err
			}
			matched = true
			out := r.Timestamp
			if ots > ts {
				out = time.UnixMilli(ots)
			}
			if own == nil {
				own = p.ownPtr(r.Value)
			}
			return p.ctx.Forward(streams.Record[K, VR]{Key: r.Key, Value: p.join(own, p.otherPtr(ov)), Timestamp: out, Headers: r.Headers})
		})
		if err != nil {
			it.Close()
			return err
		}
		if p.otherOuter {
			// The other record has a partner now: it is no longer pending.
			if err := p.pending.Delete(outerKey(ots, !p.right, kb)); err != nil {
				it.Close()
				return err
			}
		}
	}
	if matched {
		p.forget()
	}
	if err := it.Close(); err != nil {
		return err
	}
	if !matched && p.outer {
		ok := outerKey(ts, p.right, kb)
		list, err := p.pending.Get(ok)
		if err != nil {
			return err
		}
		if err := p.pending.Put(ok, appendValue(list, vb)); err != nil {
			return err
		}
	}
	return p.flushExpired(now)
}

// flushExpired emits, in timestamp order, the unmatched results of both
// sides whose windows have closed: a record at ts closes at
// ts + after + grace as seen from its own side.
func (p *streamJoinSide[K, VO, VT, VR]) flushExpired(now int64) error {
	if p.pending == nil {
		return nil
	}
	// Entries below ts + min(before, after) + grace < now may be due.
	upto := now - min(p.before, p.after) - p.grace
	it, err := p.pending.Range(nil, outerKey(upto, false, nil), false)
	if err != nil {
		return err
	}
	type due struct {
		key, values []byte
	}
	var dues []due
	for it.Next() {
		ts, right, _, err := parseOuterKey(it.Key())
		if err != nil {
			it.Close()
			return err
		}
		after := p.after
		if right != p.right {
			after = p.before
		}
		if ts+after+p.grace >= now {
			continue
		}
		dues = append(dues, due{key: append([]byte(nil), it.Key()...), values: append([]byte(nil), it.Value()...)})
	}
	if err := it.Close(); err != nil {
		return err
	}
	for _, d := range dues {
		if err := p.pending.Delete(d.key); err != nil {
			return err
		}
		if err := p.emitUnmatched(d.key, d.values); err != nil {
			return err
		}
	}
	return nil
}

func (p *streamJoinSide[K, VO, VT, VR]) emitUnmatched(okey, values []byte) error {
	ts, right, kb, err := parseOuterKey(okey)
	if err != nil {
		return err
	}
	k, err := p.ks.Deserialize(p.own, kb)
	if err != nil {
		return err
	}
	defer p.forget()
	return eachValue(values, func(b []byte) error {
		var out VR
		if right == p.right {
			v, err := p.vs.Deserialize(p.own, b)
			if err != nil {
				return err
			}
			out = p.join(p.ownPtr(v), nil)
		} else {
			v, err := p.os.Deserialize(p.other, b)
			if err != nil {
				return err
			}
			out = p.join(nil, p.otherPtr(v)) // the other side's record, with no partner
		}
		return p.ctx.Forward(streams.Record[K, VR]{Key: k, Value: out, Timestamp: time.UnixMilli(ts)})
	})
}

func joinValues(vs [][]byte) []byte {
	var out []byte
	for _, v := range vs {
		out = appendValue(out, v)
	}
	return out
}

// JoinTable is the inner stream-table join: each stream record is joined
// with the table's current value for its key, if any; table updates emit
// nothing. The stream is repartitioned first if its key may have changed;
// stream and table topics must be co-partitioned.
func JoinTable[K, V, VT, VR any](s KStream[K, V], t KTable[K, VT], joiner func(v V, tv VT) VR, opts ...Opt) KStream[K, VR] {
	return streamTableJoin(s, t, func(v V, tv *VT) (VR, bool) {
		if tv == nil {
			var zero VR
			return zero, false
		}
		return joiner(v, *tv), true
	}, "join-table", opts)
}

// LeftJoinTable is JoinTable that also emits joiner(v, nil) for stream
// records whose key the table lacks.
func LeftJoinTable[K, V, VT, VR any](s KStream[K, V], t KTable[K, VT], joiner func(v V, tv *VT) VR, opts ...Opt) KStream[K, VR] {
	return streamTableJoin(s, t, func(v V, tv *VT) (VR, bool) { return joiner(v, tv), true }, "left-join-table", opts)
}

func streamTableJoin[K, V, VT, VR any](s KStream[K, V], t KTable[K, VT], joiner func(V, *VT) (VR, bool), kind string, opts []Opt) KStream[K, VR] {
	c := s.b.config(kind, opts, optName|optKeySerde|optValueSerde)
	b := s.b
	name := b.name(c.name, kind)
	ks := pick[K](c.keySerde, t.ks)
	if ks == nil {
		ks = s.ks
	}
	s = repartitionIfRekeyed(s, name, ks, s.vs)
	topics := append(append([]string(nil), s.topics...), t.topics...)
	store := t.store
	b.add(func(tp *streams.Topology) {
		tp.RequireCopartitioned(topics...)
		ks, vts := resolve(b, ks), resolve(b, t.vs)
		if ks == nil || vts == nil {
			b.missing(tp, name, ks == nil, vts == nil)
		}
		streams.AddProcessor(tp, name, func() streams.Processor[K, V, K, VR] {
			return &tableLookup[K, V, K, VT, VR]{store: store, ks: ks, vs: vts, join: joiner,
				key: func(k K, _ V) K { return k }}
		}, s.node)
		tp.ConnectStores(name, store)
	})
	return KStream[K, VR]{b: b, node: name, ks: s.ks, vs: pick[VR](c.valSerde, nil), topics: s.topics}
}

// tableLookup joins each stream record with a table's stored value.
type tableLookup[K, V, TK, VT, VR any] struct {
	store string
	ks    serde.Serde[TK]
	vs    serde.Serde[VT]
	key   func(K, V) TK
	join  func(V, *VT) (VR, bool)
	kv    state.KeyValueStore
	ctx   streams.ProcessorContext[K, VR]
}

func (p *tableLookup[K, V, TK, VT, VR]) Init(ctx streams.ProcessorContext[K, VR]) (err error) {
	p.ctx = ctx
	p.kv, err = kvStore(ctx, p.store)
	return err
}

func (p *tableLookup[K, V, TK, VT, VR]) Process(r streams.Record[K, V]) error {
	kb, err := p.ks.Serialize(p.store, p.key(r.Key, r.Value))
	if err != nil {
		return err
	}
	tv, ok, err := getValue(p.kv, p.vs, p.store, kb)
	if err != nil {
		return err
	}
	var tvp *VT
	if ok {
		tvp = &tv
	}
	out, emit := p.join(r.Value, tvp)
	if !emit {
		return nil
	}
	return p.ctx.Forward(streams.WithValue(r, out))
}

func (p *tableLookup[K, V, TK, VT, VR]) Close() error { return nil }

// GlobalKTable is a table every task can read in full: its topic's
// partitions are all loaded by every instance, so joins with it need no
// co-partitioning.
type GlobalKTable[K, V any] struct {
	b     *Builder
	ks    serde.Serde[K]
	vs    serde.Serde[V]
	store string
}

// StoreName returns the global table's store name.
func (g GlobalKTable[K, V]) StoreName() string { return g.store }

// GlobalTable reads topic into a global table (store named by StoreName,
// default "<topic>-global-store").
func GlobalTable[K, V any](b *Builder, topic string, keySerde serde.Serde[K], valueSerde serde.Serde[V], opts ...Opt) GlobalKTable[K, V] {
	_, store := addTableSource(b, topic, keySerde, valueSerde, b.config("GlobalTable", opts, optName|optStoreName|optInMemory|optExtractor), true)
	return GlobalKTable[K, V]{b: b, ks: keySerde, vs: valueSerde, store: store}
}

// JoinGlobal joins each stream record with the global table's value for
// keyOf(key, value), emitting only when there is one.
func JoinGlobal[K, V, GK, GV, VR any](s KStream[K, V], g GlobalKTable[GK, GV], keyOf func(k K, v V) GK, joiner func(v V, gv GV) VR, opts ...Opt) KStream[K, VR] {
	return globalJoin(s, g, keyOf, func(v V, gv *GV) (VR, bool) {
		if gv == nil {
			var zero VR
			return zero, false
		}
		return joiner(v, *gv), true
	}, "join-global", opts)
}

// LeftJoinGlobal is JoinGlobal that also emits joiner(v, nil) when the
// global table lacks the key.
func LeftJoinGlobal[K, V, GK, GV, VR any](s KStream[K, V], g GlobalKTable[GK, GV], keyOf func(k K, v V) GK, joiner func(v V, gv *GV) VR, opts ...Opt) KStream[K, VR] {
	return globalJoin(s, g, keyOf, func(v V, gv *GV) (VR, bool) { return joiner(v, gv), true }, "left-join-global", opts)
}

func globalJoin[K, V, GK, GV, VR any](s KStream[K, V], g GlobalKTable[GK, GV], keyOf func(K, V) GK, joiner func(V, *GV) (VR, bool), kind string, opts []Opt) KStream[K, VR] {
	c := s.b.config(kind, opts, optName|optValueSerde)
	b := s.b
	name := b.name(c.name, kind)
	b.add(func(tp *streams.Topology) {
		ks, vs := resolve(b, g.ks), resolve(b, g.vs)
		streams.AddProcessor(tp, name, func() streams.Processor[K, V, K, VR] {
			return &tableLookup[K, V, GK, GV, VR]{store: g.store, ks: ks, vs: vs, join: joiner, key: keyOf}
		}, s.node)
		tp.ConnectStores(name, g.store)
	})
	return KStream[K, VR]{b: b, node: name, ks: s.ks, vs: pick[VR](c.valSerde, nil), topics: s.topics, rekeyed: s.rekeyed}
}

// JoinTables is the inner table-table join: the result table holds
// joiner(l, r) for every key both tables hold, updated as either changes.
func JoinTables[K, V1, V2, VR any](l KTable[K, V1], r KTable[K, V2], joiner func(l V1, r V2) VR, opts ...Opt) KTable[K, VR] {
	return tableJoin(l, r, func(a *V1, b *V2) (VR, bool) {
		if a == nil || b == nil {
			var zero VR
			return zero, false
		}
		return joiner(*a, *b), true
	}, "join-tables", opts)
}

// LeftJoinTables is JoinTables keeping every key of the left table.
func LeftJoinTables[K, V1, V2, VR any](l KTable[K, V1], r KTable[K, V2], joiner func(l V1, r *V2) VR, opts ...Opt) KTable[K, VR] {
	return tableJoin(l, r, func(a *V1, b *V2) (VR, bool) {
		if a == nil {
			var zero VR
			return zero, false
		}
		return joiner(*a, b), true
	}, "left-join-tables", opts)
}

// OuterJoinTables is JoinTables keeping every key of either table.
func OuterJoinTables[K, V1, V2, VR any](l KTable[K, V1], r KTable[K, V2], joiner func(l *V1, r *V2) VR, opts ...Opt) KTable[K, VR] {
	return tableJoin(l, r, func(a *V1, b *V2) (VR, bool) {
		if a == nil && b == nil {
			var zero VR
			return zero, false
		}
		return joiner(a, b), true
	}, "outer-join-tables", opts)
}

func tableJoin[K, V1, V2, VR any](l KTable[K, V1], r KTable[K, V2], joiner func(*V1, *V2) (VR, bool), kind string, opts []Opt) KTable[K, VR] {
	c := l.b.config(kind, opts, takesStore)
	b := l.b
	name := b.name(c.name, kind)
	store := storeNameFor(c, name)
	lnode, rnode, merge := name+"-left", name+"-right", name+"-merge"
	vrs := pick[VR](c.valSerde, nil)
	topics := append(append([]string(nil), l.topics...), r.topics...)
	b.add(func(tp *streams.Topology) {
		tp.RequireCopartitioned(topics...)
		ks, v1s, v2s, vrs := resolve(b, l.ks), resolve(b, l.vs), resolve(b, r.vs), resolve(b, vrs)
		if ks == nil || v1s == nil || v2s == nil || vrs == nil {
			b.missing(tp, name, ks == nil, v1s == nil || v2s == nil || vrs == nil)
		}
		streams.AddProcessor(tp, lnode, func() streams.Processor[K, Change[V1], K, Change[VR]] {
			return &tableJoinSide[K, V1, V2, VR]{otherStore: r.store, ks: ks, os: v2s,
				join: joiner}
		}, l.node)
		streams.AddProcessor(tp, rnode, func() streams.Processor[K, Change[V2], K, Change[VR]] {
			return &tableJoinSide[K, V2, V1, VR]{otherStore: l.store, ks: ks, os: v1s,
				join: func(own *V2, other *V1) (VR, bool) { return joiner(other, own) }}
		}, r.node)
		streams.AddProcessor(tp, merge, func() streams.Processor[K, Change[VR], K, Change[VR]] {
			return &tableDerive[K, VR, VR]{store: store, ks: ks, vs: vrs, f: func(_ K, ch Change[VR]) Change[VR] { return ch }}
		}, lnode, rnode)
		tp.ConnectStores(lnode, r.store)
		tp.ConnectStores(rnode, l.store)
		tp.AddStore(kvSpec(store, c), merge)
	})
	return KTable[K, VR]{b: b, node: merge, ks: l.ks, vs: vrs, store: store, topics: topics}
}

type tableJoinSide[K, VO, VT, VR any] struct {
	otherStore string
	ks         serde.Serde[K]
	os         serde.Serde[VT]
	join       func(own *VO, other *VT) (VR, bool)
	kv         state.KeyValueStore
	ctx        streams.ProcessorContext[K, Change[VR]]
}

func (p *tableJoinSide[K, VO, VT, VR]) Init(ctx streams.ProcessorContext[K, Change[VR]]) (err error) {
	p.ctx = ctx
	p.kv, err = kvStore(ctx, p.otherStore)
	return err
}

func (p *tableJoinSide[K, VO, VT, VR]) Process(r streams.Record[K, Change[VO]]) error {
	kb, err := p.ks.Serialize(p.otherStore, r.Key)
	if err != nil {
		return err
	}
	ov, ok, err := getValue(p.kv, p.os, p.otherStore, kb)
	if err != nil {
		return err
	}
	var other *VT
	if ok {
		other = &ov
	}
	var out Change[VR]
	if r.Value.HasNew {
		out.New, out.HasNew = p.join(&r.Value.New, other)
	} else {
		out.New, out.HasNew = p.join(nil, other)
	}
	if r.Value.HasOld {
		out.Old, out.HasOld = p.join(&r.Value.Old, other)
	} else {
		out.Old, out.HasOld = p.join(nil, other)
	}
	if !out.HasNew && !out.HasOld {
		return nil
	}
	return p.ctx.Forward(streams.WithValue(r, out))
}

func (p *tableJoinSide[K, VO, VT, VR]) Close() error { return nil }
