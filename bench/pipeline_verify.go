package main

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
)

// verifier reads an output topic from its start while the input is being
// processed and decides when the output is complete. Its checks are O(1)
// per output record, so that it keeps up with the processor it measures.
type verifier struct {
	topic string
	// apply folds one output record into the verifier's state; an error
	// (a record that cannot be right) fails the run at once.
	apply func(r *kgo.Record) error
	// complete reports whether the output read so far is complete.
	complete func() bool
	// diff describes how the output falls short, for the error.
	diff func() string

	// committed reads at read_committed (for exactly-once targets: their
	// output counts only once its transaction commits).
	committed bool

	cl   *kgo.Client
	next map[int32]int64 // partition → offset after the last record read
	read int             // output records read
	at   time.Time       // when the output became complete
	atN  int             // output records read by then
}

// follow reads the output until it is complete or ctx ends. It keeps its
// client for recheck.
func (v *verifier) follow(ctx context.Context, addrs []string) error {
	opts := []kgo.Opt{kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(v.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100 * time.Millisecond)}
	if v.committed {
		// NB: markers are kept so that recheck's reader moves past the
		// last one to the high watermark; take skips them.
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	v.cl = cl
	v.next = map[int32]int64{}
	for {
		fs := cl.PollFetches(ctx)
		now := time.Now()
		if err := v.take(ctx, fs); err != nil {
			return err
		}
		if v.complete() {
			v.at, v.atN = now, v.read
			return nil
		}
	}
}

func (v *verifier) take(ctx context.Context, fs kgo.Fetches) error {
	if ctx.Err() != nil {
		return fmt.Errorf("incomplete after %d output records: %w\n%s", v.read, ctx.Err(), v.diff())
	}
	if errs := fs.Errors(); len(errs) > 0 {
		return fmt.Errorf("fetch %s[%d]: %w", errs[0].Topic, errs[0].Partition, errs[0].Err)
	}
	var err error
	fs.EachRecord(func(r *kgo.Record) {
		if err != nil {
			return
		}
		v.next[r.Partition] = r.Offset + 1
		if r.Attrs.IsControl() {
			return
		}
		v.read++
		err = v.apply(r)
	})
	return err
}

func (v *verifier) completeAt() time.Time { return v.at }
func (v *verifier) outputAtComplete() int { return v.atN }

// recheck reads the output on to its current end (call it once the
// processor has stopped) and checks that it is still complete: a record
// after the end time that changed a result would show here.
func (v *verifier) recheck(ctx context.Context, addrs []string) error {
	defer v.cl.Close()
	adm, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return err
	}
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, v.topic)
	adm.Close()
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("end offsets: %w", err)
	}
	behind := func() bool {
		caught := true
		ends.Each(func(o kadm.ListedOffset) {
			if v.next[o.Partition] < o.Offset {
				caught = false
			}
		})
		return caught
	}
	for !behind() {
		if err := v.take(ctx, v.cl.PollFetches(ctx)); err != nil {
			return err
		}
	}
	if !v.complete() {
		return fmt.Errorf("output changed after it was complete (%d records read):\n%s", v.read, v.diff())
	}
	return nil
}

// newCountVerifier checks the windowed count's output: the last count read
// for each window must equal want's, and no window outside want may appear.
// It keeps the number of windows whose last count differs from want, so
// that completeness is a comparison with zero.
func newCountVerifier(want map[orders.WindowKey]int64) *verifier {
	got := make(map[orders.WindowKey]int64, len(want))
	mismatched := len(want)
	v := &verifier{topic: orders.UpdatesTopic}
	v.apply = func(r *kgo.Record) error {
		k, err := countKeySerde.Deserialize(r.Topic, r.Key)
		if err != nil {
			return fmt.Errorf("output key at %s[%d]@%d: %w", r.Topic, r.Partition, r.Offset, err)
		}
		n, err := countValueSerde.Deserialize(r.Topic, r.Value)
		if err != nil {
			return fmt.Errorf("output value at %s[%d]@%d: %w", r.Topic, r.Partition, r.Offset, err)
		}
		wk := orders.WindowKey{Customer: k.Key, Start: k.Window.Start.UnixMilli()}
		w, ok := want[wk]
		if !ok {
			return fmt.Errorf("output has a count (%d) for window %v, which has no orders", n, wk)
		}
		if got[wk] == w {
			mismatched++
		}
		got[wk] = n
		if n == w {
			mismatched--
		}
		return nil
	}
	v.complete = func() bool { return mismatched == 0 }
	v.diff = func() string {
		var lines []string
		for k, w := range want {
			if g := got[k]; g != w {
				lines = append(lines, fmt.Sprintf("%s@%d: got %d, want %d", k.Customer, k.Start, g, w))
			}
		}
		return fmt.Sprintf("%d of %d windows differ:\n%s", len(lines), len(want), sortedDiff(lines))
	}
	return v
}
