package topics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/google/go-cmp/cmp"

	"github.com/weir-dev/weir/internal/atomicfile"
)

// crashView is what a registry must keep across a crash: its topics, their
// ids, partition counts and explicit configs.
type crashView map[string]crashTopic

type crashTopic struct {
	ID         [16]byte
	Partitions int32
	Configs    map[string]string
}

func viewOf(r *Registry) crashView {
	v := crashView{}
	for _, t := range r.List() {
		v[t.Name()] = crashTopic{ID: t.ID(), Partitions: t.NumPartitions(), Configs: t.Configs()}
	}
	return v
}

func (v crashView) clone() crashView {
	c := crashView{}
	for k, t := range v {
		t.Configs = maps.Clone(t.Configs)
		c[k] = t
	}
	return c
}

// failAt fails the filesystem operation it is armed for (counting from the
// arming) with errorfs.ErrInjected; disarmed, it fails nothing.
type failAt struct {
	armed atomic.Bool
	left  atomic.Int32
}

func (f *failAt) arm(n int32) { f.left.Store(n); f.armed.Store(true) }
func (f *failAt) disarm()     { f.armed.Store(false) }

func (f *failAt) MaybeError(errorfs.Op) error {
	if f.armed.Load() && f.left.Add(-1) == -1 {
		return errorfs.ErrInjected
	}
	return nil
}

func (f *failAt) String() string { return "failAt" }

// TestRegistryCrash applies random topic operations to a registry on a
// memory filesystem that forgets what was not synced, and to a model. After
// every operation it "crashes" (a clone keeping a random part of the
// unsynced data) and reopens: the reopened registry must hold exactly the
// model's topics, its cluster id, and hand out producer ids above every one
// handed out before. Some operations have one filesystem operation fail
// instead: the reopened registry must then show the state before or after
// that operation, never a mix. The seed is logged.
func TestRegistryCrash(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	ctx := context.Background()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))

	mem := vfs.NewCrashableMem()
	if err := mem.MkdirAll("/data", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.SyncDirFS(mem, "/"); err != nil {
		t.Fatal(err)
	}
	inj := &failAt{}
	open := func(fs vfs.FS) *Registry {
		t.Helper()
		r, err := Open(Options{Dir: "/data", FS: errorfs.Wrap(fs, inj), OpenLog: OpenMemLog, Logger: discard})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		return r
	}
	r := open(mem)
	clusterID := r.ClusterID()
	model := crashView{}
	maxPID := int64(-1)

	// op applies one random operation valid under the model to r and
	// returns the model after it.
	names := []string{"a", "b", "c", "d"}
	op := func(r *Registry) (string, crashView, error) {
		next := model.clone()
		name := names[rng.IntN(len(names))]
		cur, exists := model[name]
		switch k := rng.IntN(5); {
		case !exists && k < 3:
			n := int32(1 + rng.IntN(3))
			cfg := map[string]string{}
			if rng.IntN(2) == 0 {
				cfg["segment.ms"] = fmt.Sprint(1000 + rng.IntN(1000))
			}
			tp, err := r.Create(ctx, name, Spec{Partitions: n, Configs: cfg})
			if err == nil {
				next[name] = crashTopic{ID: tp.ID(), Partitions: n, Configs: cfg}
			}
			return fmt.Sprintf("create %s %d %v", name, n, cfg), next, err
		case exists && k == 0:
			delete(next, name)
			return "delete " + name, next, r.Delete(name)
		case exists && k == 1:
			cur.Partitions++
			next[name] = cur
			return fmt.Sprintf("add partitions %s %d", name, cur.Partitions), next, r.AddPartitions(name, cur.Partitions)
		case exists && k == 2:
			cur.Configs = map[string]string{"retention.ms": fmt.Sprint(1000 + rng.IntN(1000))}
			next[name] = cur
			return fmt.Sprintf("set configs %s %v", name, cur.Configs), next, r.SetConfigs(name, cur.Configs)
		default:
			pid, err := r.NextProducerID()
			if err == nil {
				if pid <= maxPID {
					t.Fatalf("producer id %d handed out after %d", pid, maxPID)
				}
				maxPID = pid
			}
			return "next producer id", next, err
		}
	}
	// reopen crashes mem and reopens the registry on the crashed copy.
	reopen := func(what string) *Registry {
		t.Helper()
		_ = r.Close()
		mem = mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
		r2 := open(mem)
		if r2.ClusterID() != clusterID {
			t.Fatalf("after %s and a crash: cluster id %q, was %q", what, r2.ClusterID(), clusterID)
		}
		return r2
	}

	const steps = 80
	for i := range steps {
		if rng.IntN(4) == 0 {
			// Fail one of the operation's first few filesystem operations.
			inj.arm(int32(rng.IntN(8)))
			what, after, err := op(r)
			inj.disarm()
			if err != nil && !errors.Is(err, errorfs.ErrInjected) {
				t.Fatalf("step %d: %s: %v, want the injected error or none", i, what, err)
			}
			r = reopen(what)
			got := viewOf(r)
			switch {
			case cmp.Equal(got, after):
				model = after
			case cmp.Equal(got, model):
			default:
				t.Fatalf("step %d: after %s failed (%v) and a crash: neither the state before nor after it:\n(-before +got):\n%s\n(-after +got):\n%s",
					i, what, err, cmp.Diff(model, got), cmp.Diff(after, got))
			}
		} else {
			what, after, err := op(r)
			if err != nil {
				t.Fatalf("step %d: %s: %v", i, what, err)
			}
			model = after
			r = reopen(what)
			if diff := cmp.Diff(model, viewOf(r)); diff != "" {
				t.Fatalf("step %d: after %s and a crash (-want +got):\n%s", i, what, diff)
			}
		}
		pid, err := r.NextProducerID()
		if err != nil {
			t.Fatalf("step %d: next producer id: %v", i, err)
		}
		if pid <= maxPID {
			t.Fatalf("step %d: producer id %d handed out again after a crash (already handed out up to %d)", i, pid, maxPID)
		}
		maxPID = pid
	}
	_ = r.Close()
}
