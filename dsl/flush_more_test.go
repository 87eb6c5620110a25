package dsl_test

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/streams"
	"github.com/weir-dev/weir/streams/streamstest"
)

// Session aggregations and table sources forward from the write-back
// cache's flush too. These tests hold them to the contract of
// flush_test.go: once per key (and session) per commit, and, with a commit
// after every record, exactly what the uncached path (map stores) forwards.

type tsRow struct {
	Key     string
	Start   int64
	End     int64
	Count   int64
	Deleted bool
	TS      int64
}

func sessionProgram(t *testing.T) *streams.Topology {
	t.Helper()
	b := dsl.NewBuilder()
	sessions := dsl.Stream(b, "clicks", serde.String(), serde.String()).
		GroupByKey().
		WindowedBySession(dsl.SessionWindowsWithGap(10 * time.Millisecond).Grace(50 * time.Millisecond)).
		Count(dsl.Named("sessions"))
	dsl.ChangeStream(dsl.AsTable(sessions)).To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func sessionsOut(d *streamstest.Driver) *streamstest.OutputTopic[dsl.Windowed[string], dsl.Nullable[int64]] {
	return streamstest.CreateOutputTopic(d, "out", dsl.SessionWindowedSerde(serde.String()), dsl.NullableSerde(serde.Int64()))
}

func readSessions(t *testing.T, out *streamstest.OutputTopic[dsl.Windowed[string], dsl.Nullable[int64]]) []tsRow {
	t.Helper()
	var rows []tsRow
	for _, r := range out.ReadRecords() {
		rows = append(rows, tsRow{Key: r.Key.Key, Start: r.Key.Window.Start.UnixMilli(), End: r.Key.Window.End.UnixMilli(),
			Count: r.Value.Value, Deleted: !r.Value.Valid, TS: r.Timestamp.UnixMilli()})
	}
	return rows
}

// clicks is a random click stream over a few keys: out of order within the
// grace, some late, with records inside, next to and bridging sessions.
func clicks(seed uint64, n int) []streamstest.TestRecord[string, string] {
	rng := rand.New(rand.NewPCG(seed, seed))
	var recs []streamstest.TestRecord[string, string]
	now := int64(0)
	for range n {
		now += int64(rng.IntN(8))
		ts := now - int64(rng.IntN(70)) // up to 20 ms past the grace: some late
		recs = append(recs, streamstest.TestRecord[string, string]{
			Key: "u" + strconv.Itoa(rng.IntN(3)), Value: "x", Timestamp: time.UnixMilli(max(ts, 0))})
	}
	return recs
}

func pipeAll(d *streamstest.Driver, topic string, recs []streamstest.TestRecord[string, string]) {
	in := streamstest.CreateInputTopic(d, topic, serde.String(), serde.String())
	for _, r := range recs {
		in.PipeAt(r.Key, r.Value, r.Timestamp)
	}
}

func TestCachedSessionsForwardAsUncached(t *testing.T) {
	topo := sessionProgram(t)
	for seed := uint64(1); seed <= 5; seed++ {
		t.Logf("seed %d", seed)
		recs := clicks(seed, 300)
		cached := streamstest.New(t, topo) // commit after every record
		pipeAll(cached, "clicks", recs)
		uncached := streamstest.New(t, topo, streamstest.MapStores())
		pipeAll(uncached, "clicks", recs)
		want := readSessions(t, sessionsOut(uncached))
		if diff := cmp.Diff(want, readSessions(t, sessionsOut(cached))); diff != "" {
			t.Fatalf("seed %d: cached, committed after each record (-uncached +cached):\n%s", seed, diff)
		}
		if uncached.Metrics().DroppedTotal() == 0 {
			t.Fatalf("seed %d: no late record in the input: the test does not cover them", seed)
		}
	}
}

func TestCachedSessionsForwardOncePerCommit(t *testing.T) {
	d := streamstest.New(t, sessionProgram(t), streamstest.CommitEvery(1000))
	in := streamstest.CreateInputTopic(d, "clicks", serde.String(), serde.String())
	out := sessionsOut(d)
	// Between two commits: [0,0] is created, then grown to [0,5] and merged
	// with [25,25] into [0,25]; [60,60] is created. Downstream sees only
	// the sessions alive at the commit.
	for _, ts := range []int64{0, 25, 5, 15, 60} {
		in.PipeAt("u", "x", time.UnixMilli(ts))
	}
	d.Commit()
	// Every session of a key is forwarded with the key's latest record.
	want := []tsRow{{Key: "u", Start: 0, End: 25, Count: 4, TS: 60}, {Key: "u", Start: 60, End: 60, Count: 1, TS: 60}}
	if diff := cmp.Diff(want, readSessions(t, out)); diff != "" {
		t.Fatalf("first commit (-want +got):\n%s", diff)
	}
	// Next commit: a record inside [0,25] rewrites it in place (a deletion,
	// then the new count, as uncached), and [60,60] grows twice.
	for _, ts := range []int64{10, 65, 68} {
		in.PipeAt("u", "x", time.UnixMilli(ts))
	}
	d.Commit()
	want = []tsRow{
		{Key: "u", Start: 0, End: 25, Deleted: true, TS: 68},
		{Key: "u", Start: 0, End: 25, Count: 5, TS: 68},
		{Key: "u", Start: 60, End: 60, Deleted: true, TS: 68},
		{Key: "u", Start: 60, End: 68, Count: 3, TS: 68},
	}
	if diff := cmp.Diff(want, readSessions(t, out)); diff != "" {
		t.Fatalf("second commit (-want +got):\n%s", diff)
	}
}

// regroupProgram counts users per region from a users table, and writes the
// table's own changes to "users-changes".
func regroupProgram(t *testing.T) *streams.Topology {
	t.Helper()
	b := dsl.NewBuilder()
	users := dsl.Table(b, "users", serde.String(), serde.String())
	dsl.ChangeStream(users).To("users-changes")
	byRegion := dsl.GroupTable(users, func(user, region string) (string, string) { return region, user })
	byRegion.Count().ToStream().To("counts")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

type kvn = dsl.KeyValue[string, int64]

// With a commit after each record the table forwards each change as the
// uncached table does; the re-grouped count, cached before, still
// forwards a region once per record: a user updated within one region is
// subtracted and added again there, which the uncached path forwards as two
// updates and the cache as the latter.
func TestCachedTableAndRegroupForwardAsUncached(t *testing.T) {
	topo := regroupProgram(t)
	rng := rand.New(rand.NewPCG(7, 7))
	cached := streamstest.New(t, topo, streamstest.DefaultPartitions(2))
	uncached := streamstest.New(t, topo, streamstest.DefaultPartitions(2), streamstest.MapStores())
	type topics struct {
		in      *streamstest.InputTopic[string, string]
		counts  *streamstest.OutputTopic[string, int64]
		changes *streamstest.OutputTopic[string, dsl.Nullable[string]]
	}
	open := func(d *streamstest.Driver) topics {
		return topics{streamstest.CreateInputTopic(d, "users", serde.String(), serde.String()),
			streamstest.CreateOutputTopic(d, "counts", serde.String(), serde.Int64()),
			streamstest.CreateOutputTopic(d, "users-changes", serde.String(), dsl.NullableSerde(serde.String()))}
	}
	c, u := open(cached), open(uncached)
	for i := range 400 {
		user, region := "user"+strconv.Itoa(rng.IntN(20)), "region"+strconv.Itoa(rng.IntN(4))
		c.in.PipeAt(user, region, time.UnixMilli(int64(i)))
		u.in.PipeAt(user, region, time.UnixMilli(int64(i)))
		if diff := cmp.Diff(u.changes.ReadKeyValues(), c.changes.ReadKeyValues()); diff != "" {
			t.Fatalf("record %d: table changes (-uncached +cached):\n%s", i, diff)
		}
		if diff := cmp.Diff(lastPerKey(u.counts.ReadKeyValues()), c.counts.ReadKeyValues()); diff != "" {
			t.Fatalf("record %d: counts (-uncached, last per region +cached):\n%s", i, diff)
		}
	}
}

// lastPerKey keeps each key's last value, in the order of the last ones.
func lastPerKey(kvs []kvn) []kvn {
	var out []kvn
	for i, kv := range kvs {
		later := false
		for _, k2 := range kvs[i+1:] {
			later = later || k2.Key == kv.Key
		}
		if !later {
			out = append(out, kv)
		}
	}
	return out
}

func TestCachedTableAndRegroupForwardOncePerCommit(t *testing.T) {
	d := streamstest.New(t, regroupProgram(t), streamstest.CommitEvery(1000))
	in := streamstest.CreateInputTopic(d, "users", serde.String(), serde.String())
	// ann moves eu -> us -> eu -> us, bob joins eu and leaves, cid joins us.
	for _, kv := range [][2]string{{"ann", "eu"}, {"ann", "us"}, {"bob", "eu"}, {"ann", "eu"}, {"cid", "us"}, {"ann", "us"}} {
		in.Pipe(kv[0], kv[1])
	}
	if err := in.PipeRaw([]byte("bob"), nil, time.UnixMilli(9)); err != nil {
		t.Fatal(err)
	}
	changes := streamstest.CreateOutputTopic(d, "users-changes", serde.String(), dsl.NullableSerde(serde.String()))
	counts := streamstest.CreateOutputTopic(d, "counts", serde.String(), serde.Int64())
	if !changes.IsEmpty() || !counts.IsEmpty() {
		t.Fatalf("output before the commit: %d changes, %d counts", changes.QueueSize(), counts.QueueSize())
	}
	d.Commit()
	// One change per user alive at the commit (bob came and went), in the
	// order of their last update; the regrouping sees only those.
	wantChanges := []dsl.KeyValue[string, dsl.Nullable[string]]{{Key: "cid", Value: dsl.Some("us")}, {Key: "ann", Value: dsl.Some("us")}}
	if diff := cmp.Diff(wantChanges, changes.ReadKeyValues()); diff != "" {
		t.Errorf("table changes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]kvn{{Key: "us", Value: 2}}, counts.ReadKeyValues()); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	repartition := d.Topics()
	var rp string
	for _, n := range repartition {
		if len(n) > len("-repartition") && n[len(n)-len("-repartition"):] == "-repartition" {
			rp = n
		}
	}
	if got := streamstest.CreateOutputTopic(d, rp, serde.String(), serde.Bytes()).QueueSize(); got != 2 {
		t.Errorf("repartition topic %q holds %d records; want 2 (one add per user alive at the commit)", rp, got)
	}
}
