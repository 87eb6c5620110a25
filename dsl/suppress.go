package dsl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
)

func addSuppress[K, V any](b *Builder, name, parent string, ks serde.Serde[K], vs serde.Serde[V], windowEnd func(K) int64, grace time.Duration, cfg SuppressConfig, opts []Opt) {
	c := b.config("Suppress", opts, optName|optStoreName)
	store := storeNameFor(c, name)
	b.add(func(tp *streams.Topology) {
		ks, vs := resolve(b, ks), resolve(b, vs)
		if ks == nil || vs == nil {
			b.missing(tp, name, ks == nil, vs == nil)
		}
		streams.AddProcessor(tp, name, func() streams.Processor[K, Change[V], K, Change[V]] {
			return &suppress[K, V]{cfg: cfg, store: store, ks: ks, vs: vs, windowEnd: windowEnd, grace: grace.Milliseconds()}
		}, parent)
		// NB: in memory (the buffer is small and short-lived) but logged:
		// the changelog brings pending results back after a failover.
		tp.AddStore(streams.StoreSpec{Spec: state.Spec{Name: store, Kind: state.KindKeyValue, InMemory: true}}, name)
	})
}

// suppressed is one buffered key: its latest update (with the old value
// downstream last saw), when it is due, and its arrival order.
type suppressed[K, V any] struct {
	r      streams.Record[K, Change[V]]
	due    int64
	seq    int64
	keyStr string
}

// suppress buffers updates per key until they are due. The buffer is kept
// twice: in buf, for the due-time scan, and in a logged key-value store
// (serialized key -> encodeSuppressed), from which Init rebuilds buf after
// a restore.
type suppress[K, V any] struct {
	cfg       SuppressConfig
	store     string
	ks        serde.Serde[K]
	vs        serde.Serde[V]
	windowEnd func(K) int64
	grace     int64
	kv        state.KeyValueStore
	buf       map[string]*suppressed[K, V]
	seq       int64
	minDue    int64
	// observed is the largest timestamp of the records that reached the
	// node. It, not the task's stream time, says what is due: an upstream
	// aggregation behind a write-back cache forwards its latest results only
	// when the cache flushes, so the task's stream time may already have
	// passed a window's close while the window's last count still waits in
	// the cache. The flush writes back in the order of the last updates, so
	// a window's final result reaches this node before any record whose
	// timestamp closes the window.
	observed int64
	ctx      streams.ProcessorContext[K, Change[V]]
	// ebuf is reused to encode entries (the store copies them).
	ebuf []byte
}

func (p *suppress[K, V]) Init(ctx streams.ProcessorContext[K, Change[V]]) (err error) {
	p.ctx = ctx
	p.minDue = math.MaxInt64
	p.observed = math.MinInt64
	p.buf = map[string]*suppressed[K, V]{}
	if p.kv, err = kvStore(ctx, p.store); err != nil {
		return err
	}
	// Rebuild the buffer from the (restored) store.
	it, err := p.kv.All(false)
	if err != nil {
		return err
	}
	for it.Next() {
		e, err := p.decode(it.Key(), it.Value())
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("dsl: suppress store %q: key %q: %w", p.store, it.Key(), err)
		}
		p.buf[e.keyStr] = e
		p.seq = max(p.seq, e.seq+1)
		p.minDue = min(p.minDue, e.due)
	}
	return it.Close()
}

func (p *suppress[K, V]) Process(r streams.Record[K, Change[V]]) error {
	kb, err := p.ks.Serialize(p.store, r.Key)
	if err != nil {
		return err
	}
	e, ok := p.buf[string(kb)]
	if !ok {
		e = &suppressed[K, V]{keyStr: string(kb), seq: p.seq}
		p.seq++
		if p.cfg.untilWindowCloses {
			e.due = p.windowEnd(r.Key) + p.grace
		} else {
			e.due = r.Timestamp.UnixMilli() + p.cfg.timeLimit.Milliseconds()
		}
		p.buf[e.keyStr] = e
		// The first update's old value is what downstream last saw.
		e.r = r
	} else {
		old := e.r.Value
		e.r = r
		e.r.Value.Old, e.r.Value.HasOld = old.Old, old.HasOld
	}
	if p.ebuf, err = p.encode(p.ebuf[:0], e); err != nil {
		return err
	}
	if err := p.kv.Put(kb, p.ebuf); err != nil {
		return err
	}
	if e.due < p.minDue {
		p.minDue = e.due
	}
	if ts := r.Timestamp.UnixMilli(); ts > p.observed {
		p.observed = ts
	}
	return p.emitDue(p.observed)
}

// emitDue forwards the buffered records due at or before now, in due time
// order (ties: first buffered first).
func (p *suppress[K, V]) emitDue(now int64) error {
	if now < p.minDue {
		return nil
	}
	var due []*suppressed[K, V]
	p.minDue = math.MaxInt64
	for _, e := range p.buf {
		if e.due <= now {
			due = append(due, e)
		} else if e.due < p.minDue {
			p.minDue = e.due
		}
	}
	sort.Slice(due, func(i, j int) bool {
		if due[i].due != due[j].due {
			return due[i].due < due[j].due
		}
		return due[i].seq < due[j].seq
	})
	for _, e := range due {
		delete(p.buf, e.keyStr)
		if err := p.kv.Delete([]byte(e.keyStr)); err != nil {
			return err
		}
		if err := p.ctx.Forward(e.r); err != nil {
			return err
		}
	}
	return nil
}

func (p *suppress[K, V]) Close() error { return nil }

func (p *suppress[K, V]) encode(dst []byte, e *suppressed[K, V]) ([]byte, error) {
	ent := suppressEntry{due: e.due, seq: e.seq, ts: e.r.Timestamp.UnixMilli(), headers: e.r.Headers}
	var err error
	if e.r.Value.HasNew {
		if ent.newV, err = p.vs.Serialize(p.store, e.r.Value.New); err != nil {
			return dst, err
		}
		ent.hasNew = true
	}
	if e.r.Value.HasOld {
		if ent.oldV, err = p.vs.Serialize(p.store, e.r.Value.Old); err != nil {
			return dst, err
		}
		ent.hasOld = true
	}
	return ent.append(dst), nil
}

func (p *suppress[K, V]) decode(kb, b []byte) (*suppressed[K, V], error) {
	ent, err := decodeSuppressEntry(b)
	if err != nil {
		return nil, err
	}
	k, err := p.ks.Deserialize(p.store, kb)
	if err != nil {
		return nil, err
	}
	e := &suppressed[K, V]{due: ent.due, seq: ent.seq, keyStr: string(kb)}
	e.r = streams.Record[K, Change[V]]{Key: k, Timestamp: time.UnixMilli(ent.ts), Headers: ent.headers}
	if ent.hasNew {
		if e.r.Value.New, err = p.vs.Deserialize(p.store, ent.newV); err != nil {
			return nil, err
		}
		e.r.Value.HasNew = true
	}
	if ent.hasOld {
		if e.r.Value.Old, err = p.vs.Deserialize(p.store, ent.oldV); err != nil {
			return nil, err
		}
		e.r.Value.HasOld = true
	}
	return e, nil
}

// suppressEntry is a buffered update as the suppress store holds it:
//
//	version byte (1) | due, seq, timestamp (ms): 8 bytes each, big endian |
//	flags byte (1: new value, 2: old value) | [uvarint length, new value] |
//	[uvarint length, old value] | uvarint header count |
//	per header: uvarint key length, key, uvarint value length + 1 (0: nil), value
type suppressEntry struct {
	due, seq, ts   int64
	hasNew, hasOld bool
	newV, oldV     []byte
	headers        streams.Headers
}

const suppressEntryVersion = 1

func (e suppressEntry) append(b []byte) []byte {
	b = append(b, suppressEntryVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(e.due))
	b = binary.BigEndian.AppendUint64(b, uint64(e.seq))
	b = binary.BigEndian.AppendUint64(b, uint64(e.ts))
	var flags byte
	if e.hasNew {
		flags |= 1
	}
	if e.hasOld {
		flags |= 2
	}
	b = append(b, flags)
	if e.hasNew {
		b = binary.AppendUvarint(b, uint64(len(e.newV)))
		b = append(b, e.newV...)
	}
	if e.hasOld {
		b = binary.AppendUvarint(b, uint64(len(e.oldV)))
		b = append(b, e.oldV...)
	}
	b = binary.AppendUvarint(b, uint64(len(e.headers)))
	for _, h := range e.headers {
		b = binary.AppendUvarint(b, uint64(len(h.Key)))
		b = append(b, h.Key...)
		if h.Value == nil {
			b = binary.AppendUvarint(b, 0)
			continue
		}
		b = binary.AppendUvarint(b, uint64(len(h.Value))+1)
		b = append(b, h.Value...)
	}
	return b
}

var errSuppressEntry = errors.New("dsl: malformed suppress buffer entry")

// decodeSuppressEntry parses an entry; the slices it returns are copies.
func decodeSuppressEntry(b []byte) (suppressEntry, error) {
	var e suppressEntry
	if len(b) < 1+3*8+1 || b[0] != suppressEntryVersion {
		return e, errSuppressEntry
	}
	e.due = int64(binary.BigEndian.Uint64(b[1:]))
	e.seq = int64(binary.BigEndian.Uint64(b[9:]))
	e.ts = int64(binary.BigEndian.Uint64(b[17:]))
	flags := b[25]
	if flags&^3 != 0 {
		return e, errSuppressEntry
	}
	b = b[26:]
	bytesField := func() ([]byte, bool) {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) {
			return nil, false
		}
		v := append([]byte{}, b[w:w+int(n)]...)
		b = b[w+int(n):]
		return v, true
	}
	var ok bool
	if flags&1 != 0 {
		if e.newV, ok = bytesField(); !ok {
			return e, errSuppressEntry
		}
		e.hasNew = true
	}
	if flags&2 != 0 {
		if e.oldV, ok = bytesField(); !ok {
			return e, errSuppressEntry
		}
		e.hasOld = true
	}
	nh, w := binary.Uvarint(b)
	// Each header takes 2 bytes at least.
	if w <= 0 || nh > uint64(len(b)-w)/2 {
		return e, errSuppressEntry
	}
	b = b[w:]
	for i := uint64(0); i < nh; i++ {
		k, ok := bytesField()
		if !ok {
			return e, errSuppressEntry
		}
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w)+1 {
			return e, errSuppressEntry
		}
		b = b[w:]
		var v []byte
		if n > 0 {
			v = append([]byte{}, b[:n-1]...)
			b = b[n-1:]
		}
		e.headers = append(e.headers, streams.Header{Key: string(k), Value: v})
	}
	if len(b) != 0 {
		return e, errSuppressEntry
	}
	return e, nil
}
