package topics

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/sync/errgroup"

	"github.com/weir-dev/weir/internal/atomicfile"
)

// Sentinel errors; handlers map them to Kafka error codes.
var (
	ErrUnknownTopic      = errors.New("topics: unknown topic")
	ErrTopicExists       = errors.New("topics: topic already exists")
	ErrInvalidTopic      = errors.New("topics: invalid topic name")
	ErrInvalidPartitions = errors.New("topics: invalid partition count")
	ErrInvalidReplicas   = errors.New("topics: invalid replication factor")
	ErrClosed            = errors.New("topics: registry closed")
)

// The defaults of Options.MaxPartitionsPerTopic and
// Options.MaxPartitionsPerBroker. Each partition holds at least one open
// file (its active segment; more once it has indexes and older segments)
// and a syncer goroutine, so 50,000 partitions stay below the 65,536 open
// files a server process is commonly allowed, with room for connections;
// one topic may take a fifth of that, so that a single bad request cannot
// create millions of directories or use up the broker alone.
const (
	DefaultMaxPartitionsPerTopic  = 10000
	DefaultMaxPartitionsPerBroker = 50000
)

// Options configure a Registry.
type Options struct {
	// Dir is the data directory. Required.
	Dir string
	// FS is the filesystem the registry's own files (meta.json,
	// producer-ids, topic.json, the topic directories) live on. Partition
	// logs use what OpenLog opens them on. Default vfs.Default (the
	// operating system's).
	FS vfs.FS
	// OpenLog opens a partition log. Required.
	OpenLog OpenLogFunc
	// Defaults are the broker-wide topic config defaults (Kafka's when a
	// name is absent). Default: none.
	Defaults Defaults
	// Logger receives registry events. Default: slog.Default().
	Logger *slog.Logger
	// MaxPartitionsPerTopic bounds the partitions of one topic, at creation
	// and when it grows. Default DefaultMaxPartitionsPerTopic (10,000).
	MaxPartitionsPerTopic int32
	// MaxPartitionsPerBroker bounds the partitions of all topics together,
	// internal ones included. Default DefaultMaxPartitionsPerBroker
	// (50,000). Topics loaded at Open are never refused, even if they
	// exceed it; only new partitions are.
	MaxPartitionsPerBroker int32
}

// EnsureDefaults fills zero fields with defaults.
func (o *Options) EnsureDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.MaxPartitionsPerTopic == 0 {
		o.MaxPartitionsPerTopic = DefaultMaxPartitionsPerTopic
	}
	if o.MaxPartitionsPerBroker == 0 {
		o.MaxPartitionsPerBroker = DefaultMaxPartitionsPerBroker
	}
	if o.Defaults == nil {
		o.Defaults = Defaults{}
	}
}

// Validate reports every problem with the options at once.
func (o *Options) Validate() error {
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("topics: Dir is required"))
	}
	if o.OpenLog == nil {
		errs = append(errs, errors.New("topics: OpenLog is required"))
	}
	if err := CheckConfigs(o.Defaults); err != nil {
		errs = append(errs, fmt.Errorf("topics: broker topic defaults: %w", err))
	}
	if o.MaxPartitionsPerBroker < 1 {
		errs = append(errs, fmt.Errorf("topics: MaxPartitionsPerBroker %d is below 1", o.MaxPartitionsPerBroker))
	}
	if o.MaxPartitionsPerTopic < 1 || o.MaxPartitionsPerTopic > max(o.MaxPartitionsPerBroker, 1) {
		errs = append(errs, fmt.Errorf("topics: MaxPartitionsPerTopic %d outside 1..MaxPartitionsPerBroker (%d)", o.MaxPartitionsPerTopic, o.MaxPartitionsPerBroker))
	}
	return errors.Join(errs...)
}

// Spec describes a topic to create.
type Spec struct {
	// Partitions is the partition count, 1..Options.MaxPartitionsPerTopic.
	Partitions int32
	// Configs are explicit per-topic configs, validated by CheckConfigs.
	Configs map[string]string
	// ID is the topic's id. Default (zero): a random one. A cluster gives
	// each broker's copy of a topic the id its metadata holds.
	ID [16]byte
}

// Registry holds every topic of the broker.
type Registry struct {
	opts Options
	fs   vfs.FS
	log  *slog.Logger

	// mu serializes mutations of the topic set and their persistence. It is
	// never held on the produce or fetch path.
	mu     sync.Mutex
	closed bool // guarded by mu
	// topics is an immutable name->topic snapshot, replaced under mu.
	topics atomic.Pointer[map[string]*Topic]

	clusterID string

	pidMu    sync.Mutex
	nextPID  int64 // guarded by pidMu; next id to hand out
	pidLimit int64 // guarded by pidMu; ids below this are persisted as used
}

// Topic is one topic. Its identity (name, id) never changes; its partition
// list and configs are immutable snapshots replaced atomically.
type Topic struct {
	name    string
	id      [16]byte
	dir     string
	state   atomic.Pointer[topicState]
	deleted atomic.Bool
}

// topicState is an immutable snapshot of a topic's mutable parts.
type topicState struct {
	parts   []*Partition
	configs map[string]string // explicit only
	logCfg  LogConfig
}

// Partition is one partition of a topic.
type Partition struct {
	topic *Topic
	index int32
	log   Log
}

// Topic returns the partition's topic.
func (p *Partition) Topic() *Topic { return p.topic }

// Index returns the partition number.
func (p *Partition) Index() int32 { return p.index }

// Log returns the partition's log.
func (p *Partition) Log() Log { return p.log }

// Name returns the topic name.
func (t *Topic) Name() string { return t.name }

// ID returns the topic's 16-byte id (KIP-516).
func (t *Topic) ID() [16]byte { return t.id }

// Internal reports whether the topic is internal (its name starts "__").
func (t *Topic) Internal() bool { return strings.HasPrefix(t.name, "__") }

// NumPartitions returns the current partition count.
func (t *Topic) NumPartitions() int32 { return int32(len(t.state.Load().parts)) }

// Partition returns partition i, or false when it does not exist.
func (t *Topic) Partition(i int32) (*Partition, bool) {
	parts := t.state.Load().parts
	if i < 0 || int(i) >= len(parts) {
		return nil, false
	}
	return parts[i], true
}

// Configs returns a copy of the topic's explicitly set configs.
func (t *Topic) Configs() map[string]string { return maps.Clone(t.state.Load().configs) }

// LogConfig returns the topic's effective log configuration.
func (t *Topic) LogConfig() LogConfig { return t.state.Load().logCfg }

// Deleted reports whether the topic has been deleted (a handler holding an
// old *Topic sees this after a concurrent delete).
func (t *Topic) Deleted() bool { return t.deleted.Load() }

// topicFile is the persisted form of a topic (topic.json).
type topicFile struct {
	ID         string            `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

// metaFile is the persisted broker metadata (meta.json).
type metaFile struct {
	ClusterID string `json:"cluster_id"`
}

// Open opens the registry in opts.Dir, creating it if needed, and opens
// every topic's partition logs.
func Open(opts Options) (*Registry, error) {
	opts.Defaults = maps.Clone(opts.Defaults)
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	r := &Registry{opts: opts, fs: opts.FS, log: opts.Logger}
	for _, d := range []string{opts.Dir, r.topicsDir(), r.deletedDir()} {
		if err := r.fs.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("topics: %w", err)
		}
	}
	// The entries of topics/ and deleted/ must survive a crash before
	// anything is created under them.
	if err := r.syncDir(opts.Dir); err != nil {
		return nil, err
	}
	if err := r.loadMeta(); err != nil {
		return nil, err
	}
	if err := r.loadProducerIDs(); err != nil {
		return nil, err
	}
	// Finish removals interrupted by a crash.
	if err := r.removeChildren(r.deletedDir()); err != nil {
		return nil, err
	}
	m := map[string]*Topic{}
	names, err := r.fs.List(r.topicsDir())
	if err != nil {
		return nil, fmt.Errorf("topics: %w", err)
	}
	slices.Sort(names)
	for _, name := range names {
		if fi, err := r.fs.Stat(filepath.Join(r.topicsDir(), name)); err != nil || !fi.IsDir() {
			continue
		}
		t, err := r.loadTopic(name)
		if err != nil {
			for _, t := range m {
				t.closeLogs()
			}
			return nil, err
		}
		if t != nil {
			m[t.name] = t
		}
	}
	r.topics.Store(&m)
	return r, nil
}

func (r *Registry) topicsDir() string  { return filepath.Join(r.opts.Dir, "topics") }
func (r *Registry) deletedDir() string { return filepath.Join(r.opts.Dir, "deleted") }

func (r *Registry) loadMeta() error {
	path := filepath.Join(r.opts.Dir, "meta.json")
	b, err := atomicfile.ReadFile(r.fs, path)
	if errors.Is(err, fs.ErrNotExist) {
		var id [16]byte
		_, _ = rand.Read(id[:])
		r.clusterID = base64.RawURLEncoding.EncodeToString(id[:])
		b, _ := json.Marshal(metaFile{ClusterID: r.clusterID})
		return r.writeFileAtomic(path, b)
	}
	if err != nil {
		return fmt.Errorf("topics: %w", err)
	}
	var m metaFile
	if err := json.Unmarshal(b, &m); err != nil || m.ClusterID == "" {
		return fmt.Errorf("topics: corrupt %s: %v", path, err)
	}
	r.clusterID = m.ClusterID
	return nil
}

// loadTopic opens one topic directory; it returns nil, nil for a directory
// left by an interrupted creation (no topic.json), after removing it.
func (r *Registry) loadTopic(name string) (*Topic, error) {
	dir := filepath.Join(r.topicsDir(), name)
	b, err := atomicfile.ReadFile(r.fs, filepath.Join(dir, "topic.json"))
	if errors.Is(err, fs.ErrNotExist) {
		r.log.Warn("removing incompletely created topic", "topic", name)
		return nil, r.fs.RemoveAll(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("topics: %w", err)
	}
	var f topicFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("topics: corrupt topic.json of %q: %w", name, err)
	}
	idb, err := base64.RawURLEncoding.DecodeString(f.ID)
	if err != nil || len(idb) != 16 || f.Partitions < 1 {
		return nil, fmt.Errorf("topics: corrupt topic.json of %q", name)
	}
	if err := CheckConfigs(f.Configs); err != nil {
		return nil, fmt.Errorf("topics: topic %q: %w", name, err)
	}
	t := &Topic{name: name, dir: dir}
	copy(t.id[:], idb)
	st := &topicState{configs: f.Configs, logCfg: Resolve(r.opts.Defaults, f.Configs)}
	if st.configs == nil {
		st.configs = map[string]string{}
	}
	t.state.Store(st)
	parts, err := r.openPartitions(t, 0, f.Partitions, st.logCfg)
	if err != nil {
		return nil, err
	}
	st.parts = parts
	return t, nil
}

// logWorkers is how many partition logs are opened or closed at once: each
// waits mostly on fsyncs, which a disk serves side by side.
const logWorkers = 16

// openPartitions opens partitions [from, to) of t, logWorkers at a time.
func (r *Registry) openPartitions(t *Topic, from, to int32, cfg LogConfig) ([]*Partition, error) {
	parts := make([]*Partition, to-from)
	var g errgroup.Group
	g.SetLimit(logWorkers)
	for i := from; i < to; i++ {
		g.Go(func() error {
			l, err := r.opts.OpenLog(filepath.Join(t.dir, strconv.Itoa(int(i))), cfg)
			if err != nil {
				return fmt.Errorf("topics: open partition %d of %q: %w", i, t.name, err)
			}
			parts[i-from] = &Partition{topic: t, index: i, log: l}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		closeAll(parts)
		return nil, err
	}
	return parts, nil
}

// closeAll closes the logs of parts (nil entries skipped), logWorkers at
// a time, and returns their errors.
func closeAll(parts []*Partition) error {
	var mu sync.Mutex
	var errs []error
	var g errgroup.Group
	g.SetLimit(logWorkers)
	for _, p := range parts {
		if p == nil {
			continue
		}
		g.Go(func() error {
			if err := p.log.Close(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	return errors.Join(errs...)
}

func (t *Topic) closeLogs() {
	_ = closeAll(t.state.Load().parts)
}

// ClusterID returns the broker's persistent cluster id.
func (r *Registry) ClusterID() string { return r.clusterID }

// Get returns the topic called name.
func (r *Registry) Get(name string) (*Topic, bool) {
	t, ok := (*r.topics.Load())[name]
	return t, ok
}

// GetByID returns the topic with the given id.
func (r *Registry) GetByID(id [16]byte) (*Topic, bool) {
	for _, t := range *r.topics.Load() {
		if t.id == id {
			return t, true
		}
	}
	return nil, false
}

// List returns every topic, sorted by name.
func (r *Registry) List() []*Topic {
	m := *r.topics.Load()
	out := make([]*Topic, 0, len(m))
	for _, t := range m {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *Topic) int { return strings.Compare(a.name, b.name) })
	return out
}

// Defaults returns the broker-wide topic config defaults.
func (r *Registry) Defaults() Defaults { return r.opts.Defaults }

// MaxPartitionsPerTopic returns the most partitions a topic may have.
func (r *Registry) MaxPartitionsPerTopic() int32 { return r.opts.MaxPartitionsPerTopic }

// MaxPartitionsPerBroker returns the most partitions all topics together
// may have.
func (r *Registry) MaxPartitionsPerBroker() int32 { return r.opts.MaxPartitionsPerBroker }

// ValidateName checks a topic name as Kafka does.
func ValidateName(name string) error {
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("%w: %q", ErrInvalidTopic, name)
	}
	if len(name) > 249 {
		return fmt.Errorf("%w: %d characters, at most 249", ErrInvalidTopic, len(name))
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q may hold only ASCII letters, digits, '.', '_' and '-'", ErrInvalidTopic, name)
		}
	}
	return nil
}

// CheckSpec validates a topic spec without creating anything: the name,
// that it does not collide with an existing topic's (see Collision), the
// partition count against both limits, and the configs.
func (r *Registry) CheckSpec(name string, spec Spec) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if err := r.checkCollision(name); err != nil {
		return err
	}
	if spec.Partitions < 1 {
		return fmt.Errorf("%w: %d partitions requested for %q, at least 1", ErrInvalidPartitions, spec.Partitions, name)
	}
	if spec.Partitions > r.opts.MaxPartitionsPerTopic {
		return fmt.Errorf("%w: %d partitions requested for %q, at most %d per topic", ErrInvalidPartitions, spec.Partitions, name, r.opts.MaxPartitionsPerTopic)
	}
	if err := r.checkTotal(spec.Partitions); err != nil {
		return err
	}
	return CheckConfigs(spec.Configs)
}

// collisionKey is what two topic names that collide have in common: Kafka
// refuses "a.b" beside "a_b" because metric names replace '.' with '_', so
// the two topics' metrics would be one.
func collisionKey(name string) string { return strings.ReplaceAll(name, ".", "_") }

// Collision returns the existing topic whose name collides with name (it
// differs only in '.' against '_'), if any. A topic does not collide with
// itself.
func (r *Registry) Collision(name string) (string, bool) {
	key := collisionKey(name)
	for other := range *r.topics.Load() {
		if other != name && collisionKey(other) == key {
			return other, true
		}
	}
	return "", false
}

func (r *Registry) checkCollision(name string) error {
	if !strings.ContainsAny(name, "._") {
		return nil
	}
	if other, ok := r.Collision(name); ok {
		return fmt.Errorf("%w: %q collides with existing topic %q (names differing only in '.' and '_' would share metric names)", ErrInvalidTopic, name, other)
	}
	return nil
}

// Create creates a topic. It fails with ErrTopicExists if the name is taken.
func (r *Registry) Create(ctx context.Context, name string, spec Spec) (*Topic, error) {
	if err := r.CheckSpec(name, spec); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.createLocked(ctx, name, spec)
}

// Ensure returns the topic called name, creating it with spec if missing.
func (r *Registry) Ensure(ctx context.Context, name string, spec Spec) (*Topic, error) {
	if t, ok := r.Get(name); ok {
		return t, nil
	}
	if err := r.CheckSpec(name, spec); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.Get(name); ok {
		return t, nil
	}
	return r.createLocked(ctx, name, spec)
}

func (r *Registry) createLocked(ctx context.Context, name string, spec Spec) (*Topic, error) {
	if r.closed {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if _, ok := r.Get(name); ok {
		return nil, fmt.Errorf("%w: %q", ErrTopicExists, name)
	}
	// Again under mu: a colliding topic or other partitions may have been
	// created since CheckSpec.
	if err := r.checkCollision(name); err != nil {
		return nil, err
	}
	if err := r.checkTotal(spec.Partitions); err != nil {
		return nil, err
	}
	t := &Topic{name: name, dir: filepath.Join(r.topicsDir(), name)}
	if t.id = spec.ID; t.id == ([16]byte{}) {
		_, _ = rand.Read(t.id[:])
	}
	// A directory without topic.json is debris of an interrupted create.
	if err := r.fs.RemoveAll(t.dir); err != nil {
		return nil, fmt.Errorf("topics: %w", err)
	}
	if err := r.fs.MkdirAll(t.dir, 0o755); err != nil {
		return nil, fmt.Errorf("topics: %w", err)
	}
	configs := maps.Clone(spec.Configs)
	if configs == nil {
		configs = map[string]string{}
	}
	st := &topicState{configs: configs, logCfg: Resolve(r.opts.Defaults, configs)}
	t.state.Store(st)
	parts, err := r.openPartitions(t, 0, spec.Partitions, st.logCfg)
	if err == nil {
		st.parts = parts
		err = r.persistLocked(t, st)
	}
	if err == nil {
		// topic.json is durable in t.dir; t.dir's own entry in topics/
		// is not until topics/ is synced.
		err = r.syncDir(r.topicsDir())
	}
	if err != nil {
		for _, p := range parts {
			_ = p.log.Close()
		}
		_ = r.fs.RemoveAll(t.dir)
		return nil, err
	}
	r.publishLocked(func(m map[string]*Topic) { m[name] = t })
	r.log.Info("created topic", "topic", name, "partitions", spec.Partitions, "configs", configs)
	return t, nil
}

// checkTotal refuses adding more partitions than MaxPartitionsPerBroker
// allows. It reads the current snapshot: authoritative under mu, a
// preliminary check without it.
func (r *Registry) checkTotal(adding int32) error {
	total := int64(adding)
	for _, t := range *r.topics.Load() {
		total += int64(t.NumPartitions())
	}
	if total > int64(r.opts.MaxPartitionsPerBroker) {
		return fmt.Errorf("%w: adding %d would make %d partitions on this broker, at most %d", ErrInvalidPartitions, adding, total, r.opts.MaxPartitionsPerBroker)
	}
	return nil
}

// publishLocked installs a modified copy of the topic map.
func (r *Registry) publishLocked(edit func(map[string]*Topic)) {
	m := maps.Clone(*r.topics.Load())
	edit(m)
	r.topics.Store(&m)
}

func (r *Registry) persistLocked(t *Topic, st *topicState) error {
	b, err := json.MarshalIndent(topicFile{
		ID:         base64.RawURLEncoding.EncodeToString(t.id[:]),
		Partitions: int32(len(st.parts)),
		Configs:    st.configs,
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("topics: %w", err)
	}
	return r.writeFileAtomic(filepath.Join(t.dir, "topic.json"), b)
}

// Delete deletes a topic and all its data.
func (r *Registry) Delete(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	t, ok := r.Get(name)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	// Rename first: from here on the topic is gone even if we crash.
	gone := filepath.Join(r.deletedDir(), fmt.Sprintf("%s-%x", name, t.id[:4]))
	if err := r.fs.Rename(t.dir, gone); err != nil {
		return fmt.Errorf("topics: delete %q: %w", name, err)
	}
	if err := r.syncDir(r.topicsDir()); err != nil {
		// The rename is done: the topic is gone for this process, and a
		// restart may bring it back until topics/ is synced.
		r.log.Warn("syncing the topics directory after a delete", "topic", name, "err", err)
	}
	t.deleted.Store(true)
	r.publishLocked(func(m map[string]*Topic) { delete(m, name) })
	t.closeLogs()
	if err := r.fs.RemoveAll(gone); err != nil {
		r.log.Warn("removing deleted topic data", "topic", name, "err", err)
	}
	r.log.Info("deleted topic", "topic", name)
	return nil
}

// AddPartitions grows a topic to total partitions.
func (r *Registry) AddPartitions(name string, total int32) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	t, ok := r.Get(name)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	st := t.state.Load()
	have := int32(len(st.parts))
	if total <= have {
		return fmt.Errorf("%w: topic %q has %d partitions; the count can only grow", ErrInvalidPartitions, name, have)
	}
	if total > r.opts.MaxPartitionsPerTopic {
		return fmt.Errorf("%w: %d partitions requested for %q, at most %d per topic", ErrInvalidPartitions, total, name, r.opts.MaxPartitionsPerTopic)
	}
	if err := r.checkTotal(total - have); err != nil {
		return err
	}
	added, err := r.openPartitions(t, have, total, st.logCfg)
	if err != nil {
		return err
	}
	next := &topicState{parts: append(slices.Clip(st.parts), added...), configs: st.configs, logCfg: st.logCfg}
	if err := r.persistLocked(t, next); err != nil {
		for _, p := range added {
			_ = p.log.Remove()
		}
		return err
	}
	t.state.Store(next)
	r.log.Info("added partitions", "topic", name, "partitions", total)
	return nil
}

// SetConfigs replaces a topic's explicit configs (entries absent from
// configs revert to the broker default).
func (r *Registry) SetConfigs(name string, configs map[string]string) error {
	if err := CheckConfigs(configs); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	t, ok := r.Get(name)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	st := t.state.Load()
	configs = maps.Clone(configs)
	if configs == nil {
		configs = map[string]string{}
	}
	next := &topicState{parts: st.parts, configs: configs, logCfg: Resolve(r.opts.Defaults, configs)}
	if err := r.persistLocked(t, next); err != nil {
		return err
	}
	t.state.Store(next)
	var errs []error
	for _, p := range next.parts {
		if err := p.log.SetConfig(next.logCfg); err != nil {
			errs = append(errs, err)
		}
	}
	r.log.Info("altered topic configs", "topic", name, "configs", configs)
	return errors.Join(errs...)
}

// Close closes every partition log.
func (r *Registry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	var all []*Partition
	for _, t := range *r.topics.Load() {
		all = append(all, t.state.Load().parts...)
	}
	return closeAll(all)
}

// pidBlock is how many producer ids are reserved on disk at a time.
const pidBlock = 1000

func (r *Registry) pidPath() string { return filepath.Join(r.opts.Dir, "producer-ids") }

func (r *Registry) loadProducerIDs() error {
	b, err := atomicfile.ReadFile(r.fs, r.pidPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil // nextPID = pidLimit = 0
	}
	if err != nil {
		return fmt.Errorf("topics: %w", err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("topics: corrupt %s", r.pidPath())
	}
	// Ids below n may have been handed out before the restart: skip them.
	r.nextPID, r.pidLimit = n, n
	return nil
}

// NextProducerID hands out a producer id never handed out before, even
// across restarts: ids are reserved on disk in blocks before use.
func (r *Registry) NextProducerID() (int64, error) {
	r.pidMu.Lock()
	defer r.pidMu.Unlock()
	if r.nextPID >= r.pidLimit {
		limit := r.nextPID + pidBlock
		if err := r.writeFileAtomic(r.pidPath(), []byte(strconv.FormatInt(limit, 10)+"\n")); err != nil {
			return 0, err
		}
		r.pidLimit = limit
	}
	id := r.nextPID
	r.nextPID++
	return id, nil
}

// writeFileAtomic replaces path with data durably (atomicfile.WriteFS).
func (r *Registry) writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.WriteFS(r.fs, path, data); err != nil {
		return fmt.Errorf("topics: write %s: %w", path, err)
	}
	return nil
}

// syncDir makes the entries of dir durable.
func (r *Registry) syncDir(dir string) error {
	if err := atomicfile.SyncDirFS(r.fs, dir); err != nil {
		return fmt.Errorf("topics: sync directory %s: %w", dir, err)
	}
	return nil
}

func (r *Registry) removeChildren(dir string) error {
	names, err := r.fs.List(dir)
	if err != nil {
		return fmt.Errorf("topics: %w", err)
	}
	for _, name := range names {
		if err := r.fs.RemoveAll(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("topics: %w", err)
		}
	}
	return nil
}
