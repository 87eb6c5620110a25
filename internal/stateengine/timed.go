package stateengine

import (
	"fmt"
	"math"

	"github.com/weir-dev/weir/internal/stateengine/internal/layout"
	"github.com/weir-dev/weir/state"
)

// The timed store: the one implementation of the window and the session
// store. Both keep entries placed in time, keyed by (key, start, end): a
// session is its own start and end, a window the entry (start, start).
// Entries order by end, then start (a window store's starts, a session
// store's ends); an entry's retention time and time segment are its end's.
// The two kinds differ only in their key layouts (timedKind), in what they
// fetch (a window store a range of starts, a session store the sessions
// overlapping a range) and in whether a cache tells the listener of an
// entry that expired while dirty.
//
//	timedStore      retention (timeBox), stream time, changelog, budget
//	  timedBackend  the data, keyed by (key, start, end):
//	    pebbleTimed on Pebble, in the layout of package layout
//	    memTimed    in memory: per key a sorted slice of slots, per time
//	                segment the keys with a slot in it
//	cachedTimed     the write-back cache over a timedStore; over memTimed
//	                it caches in place (memTimed keeps both values)
//	windowStore, sessionStore, cachedWindowStore, cachedSessionStore
//	                the state interfaces over a view (timedView)

// timedKind is what differs between the window and the session store.
type timedKind struct {
	// what names the kind in errors: "window" or "session".
	what string
	// appendKey appends the Pebble key of (key, start, end) in segment
	// seg; parseKey decodes one, appending the user key to dst.
	appendKey func(dst []byte, seg int64, key []byte, start, end int64) []byte
	parseKey  func(dst, k []byte) (key []byte, start, end int64, err error)
	// appendChangelogKey and parseChangelogKey encode the changelog key.
	appendChangelogKey func(dst, key []byte, start, end int64) []byte
	parseChangelogKey  func(ck []byte) (key []byte, start, end int64, err error)
	// timesLen is the length of the times that end a key of the layout
	// (after the escaped user key): the end, then for a session the start.
	timesLen int
	// tellExpired: a dirty entry found expired at its write-back still
	// reaches the listener with its last value (a window's final result
	// may be in it: one commit interval can span more event time than the
	// retention). A session store drops it silently.
	tellExpired bool
}

var windowKind = &timedKind{
	what: "window",
	appendKey: func(dst []byte, seg int64, key []byte, _, end int64) []byte {
		return layout.AppendWindowKey(dst, seg, key, end)
	},
	parseKey: func(dst, k []byte) ([]byte, int64, int64, error) {
		_, key, start, err := layout.ParseWindowKey(dst, k)
		return key, start, start, err
	},
	appendChangelogKey: func(dst, key []byte, start, _ int64) []byte {
		return layout.AppendWindowChangelogKey(dst, key, start)
	},
	parseChangelogKey: func(ck []byte) ([]byte, int64, int64, error) {
		k, start, err := layout.ParseWindowChangelogKey(ck)
		return k, start, start, err
	},
	timesLen:    layout.TimeLen,
	tellExpired: true,
}

var sessionKind = &timedKind{
	what:      "session",
	appendKey: layout.AppendSessionKey,
	parseKey: func(dst, k []byte) ([]byte, int64, int64, error) {
		_, key, start, end, err := layout.ParseSessionKey(dst, k)
		return key, start, end, err
	},
	appendChangelogKey: layout.AppendSessionChangelogKey,
	parseChangelogKey:  layout.ParseSessionChangelogKey,
	timesLen:           2 * layout.TimeLen,
}

// splitKey splits a key of the layout, as appendKey made it, into the
// escaped user key (aliasing k) and the entry's start and end, without
// decoding the user key.
func (k *timedKind) splitKey(ck []byte) (escaped []byte, start, end int64) {
	times := ck[len(ck)-k.timesLen:]
	end = layout.Time(times)
	start = end
	if k.timesLen > layout.TimeLen {
		start = layout.Time(times[layout.TimeLen:])
	}
	return ck[layout.TimeLen : len(ck)-k.timesLen], start, end
}

// timedBackend is the data of a timed store. Writes need not check
// retention: the store does.
type timedBackend interface {
	// get returns a copy of the value of (key, start, end), or nil.
	get(key []byte, start, end int64) ([]byte, error)
	// set writes value (nil: deletes) at (key, start, end).
	set(key []byte, start, end int64, value []byte) error
	// dropBelow drops every entry in a time segment below seg.
	dropBelow(seg int64) error
	// scan iterates key's entries (nil key: every key's) with ends in
	// [endFrom, endTo] and starts at or before latestStart: one key's in
	// (end, start) order, every key's by time segment, key, end and start
	// (reversed with reverse).
	scan(key []byte, endFrom, endTo, latestStart int64, reverse bool) (timedIter, error)
}

// timedIter walks the entries of a timed store. It is both a
// state.WindowIterator and a state.SessionIterator.
type timedIter interface {
	state.WindowIterator
	Start() int64
	End() int64
}

// timedStore is the window and session store on a timedBackend: it owns
// retention, stream time and the changelog.
type timedStore struct {
	*base
	kind *timedKind
	be   timedBackend
	// mem is be on the in-memory backend (nil on Pebble): a cache over it
	// caches in place.
	mem *memTimed
	tb  timeBox
	// directMax is the latest end written by a Put that did not come from
	// a cache's write-back: a cache over the store cannot know that entry.
	directMax int64
	cbuf      []byte
}

func newTimedStore(b *base, kind *timedKind, data backend) *timedStore {
	s := &timedStore{base: b, kind: kind, tb: b.newTimeBox(), directMax: math.MinInt64}
	if data == nil {
		s.mem = newMemTimed(s)
		s.be = s.mem
		b.onWipe = s.mem.clear
	} else {
		s.be = &pebbleTimed{data: data, kind: kind, tb: &s.tb, name: b.spec.Name}
	}
	b.onReload = func() {
		s.tb = b.newTimeBox()
		if s.mem != nil {
			s.mem.relist()
		}
	}
	return s
}

func (s *timedStore) observedTime() int64 { return s.m.observed }
func (s *timedStore) expiredPuts() int64  { return s.tb.expired }

// checkPut reports a closed store, an empty key or a session ending
// before it starts.
func (s *timedStore) checkPut(key []byte, start, end int64) error {
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

// put writes through: backend, stream time, changelog. The caller checked
// the arguments (checkPut).
func (s *timedStore) put(key []byte, start, end int64, value []byte, _ any, _ bool) error {
	if s.tb.isExpired(end, s.m.observed) {
		s.tb.expired++
		return nil
	}
	s.directMax = max(s.directMax, end)
	return s.writeBack(key, start, end, value)
}

// writeBack is put without the retention check and directMax: what a
// cache writes back.
func (s *timedStore) writeBack(key []byte, start, end int64, value []byte) error {
	if err := s.apply(key, start, end, value); err != nil {
		return err
	}
	if err := s.logEntry(key, start, end, value); err != nil {
		return err
	}
	return s.afterWrite()
}

// logEntry appends the change of (key, start, end) to the changelog.
func (s *timedStore) logEntry(key []byte, start, end int64, value []byte) error {
	if s.changelog == nil {
		return nil
	}
	s.cbuf = s.kind.appendChangelogKey(s.cbuf[:0], key, start, end)
	return s.logChange(s.cbuf, value)
}

// apply writes a change to the backend (no changelog) and advances stream
// time. Restore calls it directly.
func (s *timedStore) apply(key []byte, start, end int64, value []byte) error {
	if s.tb.isExpired(end, s.m.observed) {
		return nil
	}
	if err := s.be.set(key, start, end, value); err != nil {
		return err
	}
	return s.advance(end)
}

// advance raises stream time to end and drops the segments that became
// wholly expired.
func (s *timedStore) advance(end int64) error {
	if end <= s.m.observed {
		return nil
	}
	s.m.observed = end
	if cs, ok := s.tb.expire(end); ok {
		return s.be.dropBelow(cs)
	}
	return nil
}

func (s *timedStore) applyChange(key, value []byte) error {
	k, start, end, err := s.kind.parseChangelogKey(key)
	if err != nil {
		return fmt.Errorf("%s changelog key of %d bytes: %w", s.kind.what, len(key), err)
	}
	if len(k) == 0 {
		return fmt.Errorf("%s changelog key has an empty user key", s.kind.what)
	}
	s.directMax = max(s.directMax, end)
	return s.apply(k, start, end, value)
}

// get returns a copy of the value of (key, start, end), or nil.
func (s *timedStore) get(key []byte, start, end int64) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if s.tb.isExpired(end, s.m.observed) || start > end || end > s.m.observed {
		// Expired, or never written: every write raises stream time to
		// its end (new windows of an aggregation skip the backend so).
		return nil, nil
	}
	return s.be.get(key, start, end)
}

// fetch iterates key's live entries (nil key: every key's) with ends in
// [endFrom, endTo] and starts at or before latestStart.
func (s *timedStore) fetch(key []byte, endFrom, endTo, latestStart int64, reverse bool) (timedIter, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	from, to, ok := s.tb.clamp(s.m.observed, endFrom, endTo)
	if !ok {
		return emptyIter{}, nil
	}
	return s.be.scan(key, from, to, latestStart, reverse)
}
