package stateengine

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"github.com/weir-dev/weir/state"
	"math"
	"slices"

	"github.com/weir-dev/weir/internal/stateengine/internal/layout"
)

// memSessionStore is the in-memory SessionStore, built as memWindowStore
// (see there): a hash map from each key to its sessions, sorted by end then
// start; per time segment (of the end) the keys with sessions in it; and,
// wrapped by a Cache (memSessionCached), caching in place with the current
// and the written-back value of each session and a list of writes in
// order. It differs from the window store where the cache in front of a
// session store differs: a session expired while dirty is dropped at its
// write-back without telling the listener.
type memSessionStore struct {
	*base
	tb      timeBox
	keys    map[string]*memSessKey
	last    *memSessKey
	lastIdx int
	segs    map[int64][]*memSessKey
	cbuf    []byte

	wrapped  bool
	listener SessionFlushListener
	cobs     int64
	cexpired int64
	dirty    []memSessDirty
	ndirty   int
	seq      uint64
	flushing bool
	kscratch []byte
}

type memSessKey struct {
	key   string
	sesss []memSess // sorted by end, then start
}

type memSess struct {
	start, end  int64
	cur, stored []byte
	spare       []byte
	dirty       bool
	seq         uint64
}

type memSessDirty struct {
	k          *memSessKey
	start, end int64
	seq        uint64
}

func newMemSessionStore(b *base) *memSessionStore {
	s := &memSessionStore{base: b, keys: map[string]*memSessKey{}, segs: map[int64][]*memSessKey{}, cobs: math.MinInt64}
	s.tb = newTimeBox(b.spec.Retention.Milliseconds(), b.m.observed)
	b.onReload = func() {
		s.tb = newTimeBox(b.spec.Retention.Milliseconds(), b.m.observed)
		s.relist()
	}
	b.onWipe = s.clear
	return s
}

// relist rebuilds the segment listings from the sessions. A reload can
// lower stream time below the point where advance dropped a segment's
// listing while keeping its dirty sessions; once live again, such a session
// would never be dropped.
func (s *memSessionStore) relist() {
	clear(s.segs)
	for _, k := range s.keys {
		for i := range k.sesss {
			sg := s.tb.seg(k.sesss[i].end)
			if i == 0 || s.tb.seg(k.sesss[i-1].end) != sg {
				s.segs[sg] = append(s.segs[sg], k)
			}
		}
	}
}

func (s *memSessionStore) clear() {
	clear(s.keys)
	clear(s.segs)
	s.last = nil
	clear(s.dirty)
	s.dirty, s.ndirty = s.dirty[:0], 0
}

func sessLess(aEnd, aStart, bEnd, bStart int64) bool {
	return aEnd < bEnd || (aEnd == bEnd && aStart < bStart)
}

// search returns the index of the first session of k at or after
// (end, start), and whether it is that session.
func (k *memSessKey) search(start, end int64) (int, bool) {
	lo, hi := 0, len(k.sesss)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if sessLess(k.sesss[m].end, k.sesss[m].start, end, start) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(k.sesss) && k.sesss[lo].start == start && k.sesss[lo].end == end
}

func (k *memSessKey) at(start, end int64, hint int) (int, bool) {
	if hint >= 0 && hint < len(k.sesss) && k.sesss[hint].start == start && k.sesss[hint].end == end {
		return hint, true
	}
	return k.search(start, end)
}

func (s *memSessionStore) find(key []byte) *memSessKey {
	if l := s.last; l != nil && l.key == string(key) {
		return l
	}
	k := s.keys[string(key)]
	if k != nil {
		s.last = k
	}
	return k
}

func (s *memSessionStore) session(key []byte, start, end int64) *memSess {
	k := s.find(key)
	if k == nil {
		return nil
	}
	if i, ok := k.search(start, end); ok {
		s.lastIdx = i
		return &k.sesss[i]
	}
	return nil
}

func (s *memSessionStore) insert(key []byte, start, end int64) (*memSessKey, *memSess) {
	k := s.find(key)
	if k == nil {
		k = &memSessKey{key: string(key)}
		s.keys[k.key] = k
		s.last = k
	}
	hint := -1
	if k == s.last {
		hint = s.lastIdx
	}
	i, ok := k.at(start, end, hint)
	if !ok {
		sg := s.tb.seg(end)
		listed := (i > 0 && s.tb.seg(k.sesss[i-1].end) == sg) || (i < len(k.sesss) && s.tb.seg(k.sesss[i].end) == sg)
		if !listed {
			s.segs[sg] = append(s.segs[sg], k)
		}
		k.sesss = slices.Insert(k.sesss, i, memSess{start: start, end: end})
	}
	s.lastIdx = i
	return k, &k.sesss[i]
}

func (s *memSessionStore) remove(k *memSessKey, i int) {
	k.sesss = slices.Delete(k.sesss, i, i+1)
	if len(k.sesss) == 0 {
		s.forgetKey(k)
	}
}

func (s *memSessionStore) forgetKey(k *memSessKey) {
	if s.keys[k.key] == k {
		delete(s.keys, k.key)
	}
	if s.last == k {
		s.last = nil
	}
}

// advance raises the store's observed stream time to end and drops the
// segments that became wholly expired (dirty sessions stay until their
// write-back).
func (s *memSessionStore) advance(end int64) {
	if end <= s.m.observed {
		return
	}
	s.m.observed = end
	cs := s.tb.seg(s.tb.cutoff(end))
	if cs <= s.tb.dropped {
		return
	}
	s.tb.dropped = cs
	for sg, ks := range s.segs {
		if sg >= cs {
			continue
		}
		delete(s.segs, sg)
		for _, k := range ks {
			keep := k.sesss[:0]
			for _, w := range k.sesss {
				if w.dirty || s.tb.seg(w.end) >= cs {
					keep = append(keep, w)
				}
			}
			clear(k.sesss[len(keep):])
			k.sesss = keep
			if len(keep) == 0 {
				s.forgetKey(k)
			}
		}
	}
}

func (s *memSessionStore) ObservedStreamTime() int64 { return s.m.observed }
func (s *memSessionStore) ExpiredPuts() int64        { return s.tb.expired }

func (s *memSessionStore) checkPut(key []byte, start, end int64) error {
	if err := s.check(); err != nil {
		return err
	}
	if err := s.keyErr(key); err != nil {
		return err
	}
	if start > end {
		return fmt.Errorf("state: store %q: session start %d after end %d", s.spec.Name, start, end)
	}
	return nil
}

func (s *memSessionStore) Put(key []byte, start, end int64, value []byte) error {
	if err := s.checkPut(key, start, end); err != nil {
		return err
	}
	if end < s.tb.cutoff(s.m.observed) {
		s.tb.expired++
		return nil
	}
	s.apply(key, start, end, value)
	s.cbuf = layout.AppendSessionChangelogKey(s.cbuf[:0], key, start, end)
	return s.logChange(s.cbuf, value)
}

func (s *memSessionStore) Remove(key []byte, start, end int64) error {
	return s.Put(key, start, end, nil)
}

func (s *memSessionStore) apply(key []byte, start, end int64, value []byte) {
	if end < s.tb.cutoff(s.m.observed) {
		return
	}
	if value == nil {
		if k := s.find(key); k != nil {
			if i, ok := k.search(start, end); ok {
				if w := &k.sesss[i]; w.dirty {
					w.stored = nil
				} else {
					s.remove(k, i)
				}
			}
		}
	} else {
		_, w := s.insert(key, start, end)
		if w.dirty {
			w.stored = setValue(w.stored, value)
		} else {
			w.cur = setValue(w.cur, value)
			w.stored = w.cur
		}
	}
	s.advance(end)
}

func (s *memSessionStore) applyChange(key, value []byte) error {
	k, start, end, err := layout.ParseSessionChangelogKey(key)
	if err != nil {
		return fmt.Errorf("session changelog key of %d bytes: %w", len(key), err)
	}
	if len(k) == 0 {
		return errors.New("session changelog key has an empty user key")
	}
	s.apply(k, start, end, value)
	return nil
}

func (s *memSessionStore) Get(key []byte, start, end int64) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if end < s.tb.cutoff(s.m.observed) || start > end {
		return nil, nil
	}
	if w := s.session(key, start, end); w != nil && w.stored != nil {
		return append(make([]byte, 0, len(w.stored)), w.stored...), nil
	}
	return nil, nil
}

func (s *memSessionStore) FindSessions(key []byte, earliestEnd, latestStart int64) (state.SessionIterator, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.find2(false, s.m.observed, key, earliestEnd, latestStart), nil
}

func (s *memSessionStore) Fetch(key []byte) (state.SessionIterator, error) {
	return s.FindSessions(key, math.MinInt64, math.MaxInt64)
}

func (s *memSessionStore) All() (state.SessionIterator, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.all(false, s.m.observed), nil
}

func (w *memSess) value(cached bool) []byte {
	if cached {
		return w.cur
	}
	return w.stored
}

// find2 lists key's sessions of a view ending at or after earliestEnd
// (and not expired as of observed) and starting at or before latestStart.
func (s *memSessionStore) find2(cached bool, observed int64, key []byte, earliestEnd, latestStart int64) state.SessionIterator {
	if observed == math.MinInt64 {
		return emptyIter{}
	}
	from := max(earliestEnd, s.tb.cutoff(observed))
	if from > observed {
		return emptyIter{}
	}
	k := s.find(key)
	if k == nil {
		return emptyIter{}
	}
	it := &memListIter{i: -1}
	it.ents = it.inline[:0]
	kb := append(it.keyBuf[:0], key...)
	i, _ := k.search(math.MinInt64, from)
	for ; i < len(k.sesss); i++ {
		w := &k.sesss[i]
		if w.start > latestStart {
			continue
		}
		if v := w.value(cached); v != nil {
			vo, vn := it.vals.add(v, len(k.sesss)-i-1)
			it.ents = append(it.ents, memListEnt{key: kb, start: w.start, end: w.end, vo: vo, vn: vn})
		}
	}
	return it
}

// all lists every unexpired session of a view, ordered by time segment,
// key, end and start as the Pebble store's keys are.
func (s *memSessionStore) all(cached bool, observed int64) state.SessionIterator {
	if observed == math.MinInt64 {
		return emptyIter{}
	}
	from := s.tb.cutoff(observed)
	it := &memListIter{i: -1}
	for _, k := range s.keys {
		var kb []byte
		for i := range k.sesss {
			w := &k.sesss[i]
			if w.end < from {
				continue
			}
			if v := w.value(cached); v != nil {
				if kb == nil {
					kb = []byte(k.key)
				}
				vo, vn := it.vals.add(v, 16)
				it.ents = append(it.ents, memListEnt{key: kb, start: w.start, end: w.end, vo: vo, vn: vn})
			}
		}
	}
	slices.SortFunc(it.ents, func(a, b memListEnt) int {
		if c := cmp.Compare(s.tb.seg(a.end), s.tb.seg(b.end)); c != 0 {
			return c
		}
		if c := bytes.Compare(a.key, b.key); c != 0 {
			return c
		}
		if c := cmp.Compare(a.end, b.end); c != 0 {
			return c
		}
		return cmp.Compare(a.start, b.start)
	})
	return it
}

// memSessionCached is a memSessionStore wrapped by a Cache.
type memSessionCached struct{ s *memSessionStore }

func (c *memSessionCached) baseStore() *base { return c.s.base }
func (c *memSessionCached) applyChange(key, value []byte) error {
	return c.s.applyChange(key, value)
}
func (c *memSessionCached) Name() string { return c.s.Name() }

// dropCached forgets the writes not written back.
func (c *memSessionCached) dropCached() {
	s := c.s
	for _, d := range s.dirty {
		i, ok := d.k.search(d.start, d.end)
		if !ok {
			continue
		}
		w := &d.k.sesss[i]
		if !w.dirty || w.seq != d.seq {
			continue
		}
		w.dirty = false
		s.ndirty--
		if w.stored == nil || w.end < s.tb.cutoff(s.m.observed) {
			s.remove(d.k, i)
			continue
		}
		w.cur = w.stored
	}
	clear(s.dirty)
	s.dirty = s.dirty[:0]
	s.cobs = math.MinInt64
}

func (c *memSessionCached) obs() int64 { return max(c.s.cobs, c.s.m.observed) }

func (c *memSessionCached) ObservedStreamTime() int64 { return c.obs() }
func (c *memSessionCached) ExpiredPuts() int64        { return c.s.cexpired + c.s.tb.expired }

func (c *memSessionCached) Put(key []byte, start, end int64, value []byte) error {
	s := c.s
	if err := s.checkPut(key, start, end); err != nil {
		return err
	}
	if end < s.tb.cutoff(c.obs()) {
		s.cexpired++
		return nil
	}
	if end > s.cobs {
		s.cobs = end
	}
	k, w := s.insert(key, start, end)
	if !w.dirty {
		w.dirty = true
		s.ndirty++
		if value == nil {
			w.cur = nil
		} else {
			w.cur = setValue(w.spare, value)
			w.spare = nil
		}
	} else {
		switch {
		case value == nil:
			if w.cur != nil {
				w.spare = w.cur
			}
			w.cur = nil
		case w.cur != nil:
			w.cur = setValue(w.cur, value)
		default:
			w.cur = setValue(w.spare, value)
			w.spare = nil
		}
	}
	s.seq++
	w.seq = s.seq
	s.dirty = append(s.dirty, memSessDirty{k: k, start: start, end: end, seq: s.seq})
	if !s.flushing && len(s.dirty) > 2*s.ndirty+64 {
		keep := s.dirty[:0]
		for _, d := range s.dirty {
			if i, ok := d.k.search(d.start, d.end); ok {
				if w := &d.k.sesss[i]; w.dirty && w.seq == d.seq {
					keep = append(keep, d)
				}
			}
		}
		clear(s.dirty[len(keep):])
		s.dirty = keep
	}
	return nil
}

func (c *memSessionCached) Remove(key []byte, start, end int64) error {
	return c.Put(key, start, end, nil)
}

func (c *memSessionCached) Get(key []byte, start, end int64) ([]byte, error) {
	s := c.s
	if err := s.check(); err != nil {
		return nil, err
	}
	if end < s.tb.cutoff(c.obs()) || start > end {
		return nil, nil
	}
	if w := s.session(key, start, end); w != nil && w.cur != nil {
		return append(make([]byte, 0, len(w.cur)), w.cur...), nil
	}
	return nil, nil
}

func (c *memSessionCached) FindSessions(key []byte, earliestEnd, latestStart int64) (state.SessionIterator, error) {
	if err := c.s.check(); err != nil {
		return nil, err
	}
	return c.s.find2(true, c.obs(), key, earliestEnd, latestStart), nil
}

func (c *memSessionCached) Fetch(key []byte) (state.SessionIterator, error) {
	return c.FindSessions(key, math.MinInt64, math.MaxInt64)
}

func (c *memSessionCached) All() (state.SessionIterator, error) {
	if err := c.s.check(); err != nil {
		return nil, err
	}
	return c.s.all(true, c.obs()), nil
}

// Flush writes the dirty sessions back in the order of their last write,
// then commits. On error the sessions not written back stay dirty.
func (c *memSessionCached) Flush(ctx context.Context) error {
	s := c.s
	if err := s.check(); err != nil {
		return err
	}
	s.flushing = true
	var err error
	i := 0
	for ; i < len(s.dirty); i++ {
		if err = s.writeBack(s.dirty[i]); err != nil {
			break
		}
	}
	s.flushing = false
	if err != nil {
		n := copy(s.dirty, s.dirty[i:])
		clear(s.dirty[n:])
		s.dirty = s.dirty[:n]
		return err
	}
	clear(s.dirty)
	s.dirty = s.dirty[:0]
	return s.base.Flush(ctx)
}

func (s *memSessionStore) writeBack(d memSessDirty) error {
	k, start, end := d.k, d.start, d.end
	i, ok := k.search(start, end)
	if !ok {
		return nil
	}
	w := &k.sesss[i]
	if !w.dirty || w.seq != d.seq {
		return nil
	}
	if end < s.tb.cutoff(s.m.observed) {
		// Expired while dirty: the store ignores it.
		s.cexpired++
		s.cleanSess(k, start, end, i, d.seq, true)
		return nil
	}
	value, old := w.cur, w.stored
	s.kscratch = append(s.kscratch[:0], k.key...)
	s.cbuf = layout.AppendSessionChangelogKey(s.cbuf[:0], s.kscratch, start, end)
	if err := s.logChange(s.cbuf, value); err != nil {
		return err
	}
	s.advance(end)
	if s.listener != nil && (value != nil || old != nil) {
		if err := s.listener(s.kscratch, start, end, value, old); err != nil {
			return err
		}
	}
	s.cleanSess(k, start, end, i, d.seq, value == nil)
	return nil
}

func (s *memSessionStore) cleanSess(k *memSessKey, start, end int64, hint int, seq uint64, gone bool) {
	i, ok := k.at(start, end, hint)
	if !ok {
		return
	}
	w := &k.sesss[i]
	if !w.dirty || w.seq != seq {
		return
	}
	w.dirty = false
	s.ndirty--
	if gone {
		s.remove(k, i)
		return
	}
	w.spare, w.stored = w.stored, w.cur
}

func (c *memSessionCached) Close() error {
	c.dropCached()
	return c.s.Close()
}
