package quorum

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// StorageConfig says where raft storage lives and what it belongs to.
type StorageConfig struct {
	// FS is the filesystem of the Pebble database. Default vfs.Default.
	FS vfs.FS
	// Dir is the database's directory. Required.
	Dir string
	// ClusterID, NodeID and Voters are written at the first open and must
	// match at every later one. All required.
	ClusterID string
	NodeID    NodeID
	Voters    []Voter
	// Rejoin marks an empty directory as rejoining (Options.Rejoin). It
	// does nothing to a directory that holds raft storage.
	Rejoin bool
	// Logger receives Pebble's log lines (at debug level). Default
	// slog.Default().
	Logger *slog.Logger
}

// Storage is raft's log, HardState and snapshot, durable on Pebble. It
// implements raft.Storage by reading a raft.MemoryStorage that holds the same
// state: every change is first committed to Pebble (synced) and only then
// made in memory, so raft never sees a state that a power loss could undo.
//
// Storage is used by one goroutine at a time (the node's raft loop); the
// MemoryStorage it embeds has its own lock for raft's reads.
type Storage struct {
	*raft.MemoryStorage
	db   *pebble.DB
	path string
	// rejoining: the directory holds the rejoin mark (keyRejoin).
	rejoining bool
}

// OpenStorage opens (or, in an empty directory, creates) raft storage. It
// reads and checks every record: a checksum that does not match, an entry
// under the wrong index, a gap in the log or a commit index beyond it is
// refused with a CorruptionError naming the directory and the index. A
// directory bound to another cluster, node id or voter set is refused with
// ErrWrongCluster, ErrWrongNode or ErrVotersChanged.
func OpenStorage(cfg StorageConfig) (_ *Storage, err error) {
	if cfg.FS == nil {
		cfg.FS = vfs.Default
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Dir == "" || cfg.ClusterID == "" || cfg.NodeID == 0 || len(cfg.Voters) == 0 {
		return nil, errors.New("quorum: storage: Dir, ClusterID, NodeID and Voters are required")
	}
	if err := cfg.FS.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("quorum: create raft storage directory %s: %w", cfg.Dir, err)
	}
	db, err := openPebble(cfg)
	if err != nil {
		if pebble.IsCorruptionError(err) || errors.Is(err, pebble.ErrCorruption) {
			return nil, &CorruptionError{Path: cfg.Dir, What: "database", Err: err}
		}
		return nil, fmt.Errorf("quorum: open raft storage %s: %w", cfg.Dir, err)
	}
	s := &Storage{MemoryStorage: raft.NewMemoryStorage(), db: db, path: cfg.Dir}
	defer func() {
		if err != nil {
			_ = db.Close()
		}
	}()
	want := identity{ClusterID: cfg.ClusterID, NodeID: cfg.NodeID, Voters: sortedVoters(cfg.Voters)}
	if err := s.load(want, cfg.Rejoin); err != nil {
		return nil, err
	}
	return s, nil
}

// Rejoining reports whether the directory was created to rejoin the voters
// and the node has not yet applied its re-addition.
func (s *Storage) Rejoining() bool { return s.rejoining }

// SetRejoined removes the rejoin mark (synced).
func (s *Storage) SetRejoined() error {
	if !s.rejoining {
		return nil
	}
	if err := s.db.Delete([]byte{keyRejoin}, pebble.Sync); err != nil {
		return fmt.Errorf("quorum: write to %s: %w", s.path, err)
	}
	s.rejoining = false
	return nil
}

func openPebble(cfg StorageConfig) (db *pebble.DB, err error) {
	// NB: Pebble panics on some kinds of corruption it meets while opening;
	// turn that into an error so a bad directory is reported, not fatal.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", pebble.ErrCorruption, r)
		}
	}()
	return pebble.Open(cfg.Dir, &pebble.Options{
		FS:           cfg.FS,
		Logger:       pebbleLogger{cfg.Logger},
		MemTableSize: 8 << 20,
		// NB: without a DataCorruption listener Pebble calls Fatalf (a
		// panic here) on a bad block checksum; with one, the read returns
		// the corruption error, which OpenStorage reports as a
		// CorruptionError naming the directory.
		EventListener: &pebble.EventListener{DataCorruption: func(info pebble.DataCorruptionInfo) {
			cfg.Logger.Error("quorum: raft storage corrupt", "dir", cfg.Dir, "details", info.String())
		}},
	})
}

// pebbleLogger sends Pebble's log lines to slog at debug level; Fatalf
// panics, as Pebble expects it not to return.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "quorum-pebble")
}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "quorum-pebble")
}
func (p pebbleLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("quorum: pebble: "+format, args...))
}

func (s *Storage) corrupt(what string, index uint64, err error) error {
	return &CorruptionError{Path: s.path, What: what, Index: index, Err: err}
}

// get returns the checked payload under key, nil if there is none.
func (s *Storage) get(key []byte, what string) ([]byte, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		if pebble.IsCorruptionError(err) {
			return nil, s.corrupt(what, 0, err)
		}
		return nil, fmt.Errorf("quorum: read %s from %s: %w", what, s.path, err)
	}
	defer closer.Close()
	p, err := decodeRecord(key, v)
	if err != nil {
		return nil, s.corrupt(what, 0, err)
	}
	return bytes.Clone(p), nil
}

func (s *Storage) load(want identity, rejoin bool) error {
	idb, err := s.get([]byte{keyIdentity}, "identity")
	if err != nil {
		return err
	}
	if idb == nil {
		return s.bootstrap(want, rejoin)
	}
	rj, err := s.get([]byte{keyRejoin}, "rejoin mark")
	if err != nil {
		return err
	}
	s.rejoining = rj != nil
	have, err := decodeIdentity(idb)
	if err != nil {
		return s.corrupt("identity", 0, err)
	}
	if err := checkIdentity(s.path, have, want); err != nil {
		return err
	}

	snap := &pb.Snapshot{}
	sb, err := s.get([]byte{keySnapshot}, "snapshot")
	if err != nil {
		return err
	}
	if sb == nil {
		return s.corrupt("snapshot", 0, errors.New("missing (every directory holds one from its first start)"))
	}
	if err := proto.Unmarshal(sb, snap); err != nil {
		return s.corrupt("snapshot", 0, err)
	}
	snap = pb.EnsureSnapshot(snap)
	hs := &pb.HardState{}
	hb, err := s.get([]byte{keyHardState}, "hard state")
	if err != nil {
		return err
	}
	if hb != nil {
		if err := proto.Unmarshal(hb, hs); err != nil {
			return s.corrupt("hard state", 0, err)
		}
	}

	ents, err := s.loadEntries(snap.GetMetadata().GetIndex(), snap.GetMetadata().GetTerm())
	if err != nil {
		return err
	}
	last := snap.GetMetadata().GetIndex()
	if len(ents) > 0 {
		last = ents[len(ents)-1].GetIndex()
	}
	if hs.GetCommit() > last {
		return s.corrupt("hard state", hs.GetCommit(), fmt.Errorf("commit index %d is beyond the last entry %d", hs.GetCommit(), last))
	}
	if err := s.MemoryStorage.ApplySnapshot(snap); err != nil {
		return fmt.Errorf("quorum: load snapshot from %s: %w", s.path, err)
	}
	if err := s.MemoryStorage.Append(ents); err != nil {
		return fmt.Errorf("quorum: load entries from %s: %w", s.path, err)
	}
	if hb != nil {
		if err := s.MemoryStorage.SetHardState(hs); err != nil {
			return fmt.Errorf("quorum: load hard state from %s: %w", s.path, err)
		}
	}
	return nil
}

// loadEntries reads and checks every stored entry and returns those after
// the snapshot at snapIndex. Entries at or before it (kept for followers
// until the next compaction) are checked but not returned: the in-memory
// log starts at the snapshot.
func (s *Storage) loadEntries(snapIndex, snapTerm uint64) ([]*pb.Entry, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{keyEntry}, UpperBound: []byte{keyEntry + 1}})
	if err != nil {
		return nil, fmt.Errorf("quorum: read entries from %s: %w", s.path, err)
	}
	defer it.Close()
	var (
		ents              []*pb.Entry
		prevIndex, prevTm uint64
		first             = true
	)
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != 9 {
			return nil, s.corrupt("log", 0, fmt.Errorf("entry key %x has %d bytes, want 9", k, len(k)))
		}
		idx := binary.BigEndian.Uint64(k[1:])
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, s.corrupt("entry", idx, err)
		}
		p, err := decodeRecord(k, v)
		if err != nil {
			return nil, s.corrupt("entry", idx, err)
		}
		e := &pb.Entry{}
		if err := proto.Unmarshal(p, e); err != nil {
			return nil, s.corrupt("entry", idx, err)
		}
		switch {
		case e.GetIndex() != idx:
			return nil, s.corrupt("entry", idx, fmt.Errorf("holds index %d", e.GetIndex()))
		case !first && idx != prevIndex+1:
			return nil, s.corrupt("entry", idx, fmt.Errorf("log has a gap: entries %d to %d are missing", prevIndex+1, idx-1))
		case !first && e.GetTerm() < prevTm:
			return nil, s.corrupt("entry", idx, fmt.Errorf("term %d is below the previous entry's term %d", e.GetTerm(), prevTm))
		}
		first, prevIndex, prevTm = false, idx, e.GetTerm()
		if idx <= snapIndex {
			continue
		}
		if len(ents) == 0 {
			if idx != snapIndex+1 {
				return nil, s.corrupt("entry", idx, fmt.Errorf("log has a gap: entries %d to %d after the snapshot at %d are missing", snapIndex+1, idx-1, snapIndex))
			}
			if e.GetTerm() < snapTerm {
				return nil, s.corrupt("entry", idx, fmt.Errorf("term %d is below the snapshot's term %d", e.GetTerm(), snapTerm))
			}
		}
		ents = append(ents, e)
	}
	if err := it.Error(); err != nil {
		return nil, s.corrupt("log", prevIndex, err)
	}
	return ents, nil
}

// bootstrap binds an empty directory to want: its identity and an initial
// snapshot at index 0 whose ConfState lists the voters (as every voter's
// first start wrote it, so that a rejoining node replaying the log from
// index 1 arrives at the same voter sets), and with rejoin the rejoin mark.
func (s *Storage) bootstrap(want identity, rejoin bool) error {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return fmt.Errorf("quorum: read %s: %w", s.path, err)
	}
	nonEmpty := it.First()
	_ = it.Close()
	if nonEmpty {
		return s.corrupt("identity", 0, errors.New("missing, but the directory holds raft records"))
	}
	snap := &pb.Snapshot{Metadata: &pb.SnapshotMetadata{
		Index: new(uint64(0)), Term: new(uint64(0)),
		ConfState: &pb.ConfState{Voters: voterIDs(want.Voters)},
	}}
	b := s.db.NewBatch()
	defer b.Close()
	if err := s.putRecord(b, []byte{keyIdentity}, want.encode()); err != nil {
		return err
	}
	if err := s.putProto(b, []byte{keySnapshot}, snap); err != nil {
		return err
	}
	if rejoin {
		if err := s.putRecord(b, []byte{keyRejoin}, nil); err != nil {
			return err
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("quorum: write identity to %s: %w", s.path, err)
	}
	s.rejoining = rejoin
	return s.MemoryStorage.ApplySnapshot(snap)
}

func checkIdentity(path string, have, want identity) error {
	if have.ClusterID != want.ClusterID {
		return fmt.Errorf("%w: %s belongs to cluster %q, but this node was started for cluster %q: "+
			"start it with the data directory of cluster %q (or the matching voters), or move the directory "+
			"away to join cluster %q as a new, empty node", ErrWrongCluster, path, have.ClusterID, want.ClusterID, want.ClusterID, want.ClusterID)
	}
	if have.NodeID != want.NodeID {
		return fmt.Errorf("%w: %s belongs to node %d, but this node is %d: start node %d with its own "+
			"data directory, or start this directory with --node-id %d", ErrWrongNode, path, have.NodeID, want.NodeID, want.NodeID, have.NodeID)
	}
	if !slices.Equal(have.Voters, want.Voters) {
		return fmt.Errorf("%w: %s was formed with voters %s, but this node was started with %s: "+
			"start it with --controller-voters %s (changing the voter set of an existing cluster is not supported)",
			ErrVotersChanged, path, FormatVoters(have.Voters), FormatVoters(want.Voters), FormatVoters(have.Voters))
	}
	return nil
}

func (s *Storage) putRecord(b *pebble.Batch, key, payload []byte) error {
	if err := b.Set(key, appendRecord(nil, key, payload), nil); err != nil {
		return fmt.Errorf("quorum: write to %s: %w", s.path, err)
	}
	return nil
}

func (s *Storage) putProto(b *pebble.Batch, key []byte, m proto.Message) error {
	p, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("quorum: encode %T: %w", m, err)
	}
	return s.putRecord(b, key, p)
}

// Save makes what a raft Ready asks to persist durable, in one synced Pebble
// batch, then applies it to the in-memory log: a snapshot received from the
// leader (which replaces the whole log), new entries (which replace any
// stored entries from their first index on) and the HardState. Nil or empty
// arguments are skipped.
func (s *Storage) Save(hs *pb.HardState, ents []*pb.Entry, snap *pb.Snapshot) error {
	hasSnap := snap != nil && !raft.IsEmptySnap(snap)
	hasHS := hs != nil && !raft.IsEmptyHardState(hs)
	if !hasSnap && !hasHS && len(ents) == 0 {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	if hasSnap {
		if err := s.putProto(b, []byte{keySnapshot}, snap); err != nil {
			return err
		}
		if err := b.DeleteRange([]byte{keyEntry}, []byte{keyEntry + 1}, nil); err != nil {
			return fmt.Errorf("quorum: write to %s: %w", s.path, err)
		}
	}
	if len(ents) > 0 {
		// Entries from ents[0] on that ents does not overwrite are gone:
		// raft truncates a follower's log where it conflicts with the
		// leader's.
		oldLast, _ := s.MemoryStorage.LastIndex()
		newLast := ents[len(ents)-1].GetIndex()
		for i := newLast + 1; !hasSnap && i <= oldLast; i++ {
			if err := b.Delete(entryKey(i), nil); err != nil {
				return fmt.Errorf("quorum: write to %s: %w", s.path, err)
			}
		}
		for _, e := range ents {
			if err := s.putProto(b, entryKey(e.GetIndex()), e); err != nil {
				return err
			}
		}
	}
	if hasHS {
		if err := s.putProto(b, []byte{keyHardState}, hs); err != nil {
			return err
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("quorum: persist raft state to %s: %w", s.path, err)
	}
	if hasSnap {
		if err := s.MemoryStorage.ApplySnapshot(snap); err != nil {
			return fmt.Errorf("quorum: apply snapshot at %d: %w", snap.GetMetadata().GetIndex(), err)
		}
	}
	if err := s.MemoryStorage.Append(ents); err != nil {
		return fmt.Errorf("quorum: append entries: %w", err)
	}
	if hasHS {
		if err := s.MemoryStorage.SetHardState(hs); err != nil {
			return fmt.Errorf("quorum: set hard state: %w", err)
		}
	}
	return nil
}

// SaveSnapshot stores a snapshot of the state machine as of index (which
// must be applied, hence in the log) and compacts the log: entries before
// compactTo are deleted (compactTo <= index; 0 keeps them all). The snapshot
// and the deletion are one synced batch: a power loss keeps both or neither.
func (s *Storage) SaveSnapshot(index uint64, cs *pb.ConfState, data []byte, compactTo uint64) error {
	cur, _ := s.MemoryStorage.Snapshot()
	if index <= cur.GetMetadata().GetIndex() {
		return fmt.Errorf("quorum: snapshot at %d is not after the stored one at %d", index, cur.GetMetadata().GetIndex())
	}
	if last, _ := s.MemoryStorage.LastIndex(); index > last {
		return fmt.Errorf("quorum: snapshot at %d is beyond the last entry %d", index, last)
	}
	if compactTo > index {
		return fmt.Errorf("quorum: compaction to %d is beyond the snapshot at %d", compactTo, index)
	}
	term, err := s.MemoryStorage.Term(index)
	if err != nil {
		return fmt.Errorf("quorum: term of snapshot index %d: %w", index, err)
	}
	snap := &pb.Snapshot{Data: data, Metadata: &pb.SnapshotMetadata{Index: new(index), Term: new(term), ConfState: cs}}
	b := s.db.NewBatch()
	defer b.Close()
	if err := s.putProto(b, []byte{keySnapshot}, snap); err != nil {
		return err
	}
	if compactTo > 0 {
		if err := b.DeleteRange([]byte{keyEntry}, entryKey(compactTo), nil); err != nil {
			return fmt.Errorf("quorum: write to %s: %w", s.path, err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("quorum: persist snapshot at %d to %s: %w", index, s.path, err)
	}
	if _, err := s.MemoryStorage.CreateSnapshot(index, cs, data); err != nil {
		return fmt.Errorf("quorum: snapshot at %d: %w", index, err)
	}
	if first, _ := s.MemoryStorage.FirstIndex(); compactTo > first {
		if err := s.MemoryStorage.Compact(compactTo); err != nil {
			return fmt.Errorf("quorum: compact to %d: %w", compactTo, err)
		}
	}
	return nil
}

// Close closes the Pebble database.
func (s *Storage) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("quorum: close raft storage %s: %w", s.path, err)
	}
	return nil
}
