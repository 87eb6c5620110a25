package main

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/broker"
)

func weirBroker(t *testing.T) string {
	t.Helper()
	b, err := broker.Open(broker.Options{Listen: "127.0.0.1:0", DataDir: t.TempDir(), GroupInitialRebalanceDelay: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b.Addr()
}

func groupJSON[T any](t *testing.T, args ...string) T {
	t.Helper()
	var v T
	out := mustRun(t, "", append([]string{"group"}, append(args, "--json")...)...)
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("weir group %v: %v\n%s", args, err, out)
	}
	return v
}

// TestGroupCommands drives `weir group` against a Weir broker: list,
// describe with lag, reset-offsets (refused with members, dry run, execute),
// delete.
func TestGroupCommands(t *testing.T) {
	addr := weirBroker(t)
	b := "--brokers=" + addr
	ctx := context.Background()
	mustRun(t, "", "topic", "create", "orders", "-p", "3", b)

	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	produce := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			v := strconv.Itoa(i)
			if err := prod.ProduceSync(ctx, &kgo.Record{Key: []byte(v), Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(0, 30)

	cons, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID("billing"), kgo.ConsumerGroup("cg"),
		kgo.ConsumeTopics("orders"), kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for n := 0; n < 30; {
		pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		fs := cons.PollFetches(pctx)
		err := pctx.Err()
		cancel()
		if err != nil {
			t.Fatalf("consumed %d of 30: %v", n, err)
		}
		n += fs.NumRecords()
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}

	listed := groupJSON[[]ListedGroup](t, "list", b)
	if diff := cmp.Diff([]ListedGroup{{Group: "cg", State: "Stable", ProtocolType: "consumer"}}, listed); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}

	produce(30, 39)
	d := groupJSON[DescribedGroup](t, "describe", "cg", b)
	if d.State != "Stable" || len(d.Members) != 1 || d.Members[0].ClientID != "billing" || len(d.Members[0].Assigned) != 3 {
		t.Errorf("describe: %+v", d)
	}
	if d.TotalLag != 9 || len(d.Partitions) != 3 {
		t.Errorf("describe: total lag %d over %d partitions, want 9 over 3: %+v", d.TotalLag, len(d.Partitions), d.Partitions)
	}
	for _, p := range d.Partitions {
		if p.Lag != p.LogEnd-p.Committed || p.MemberID != d.Members[0].MemberID {
			t.Errorf("partition row %+v", p)
		}
	}
	text := mustRun(t, "", "group", "describe", "cg", b)
	for _, want := range []string{"Group cg: state Stable", "CURRENT-OFFSET", "LOG-END-OFFSET", "billing", "TOTAL"} {
		if !strings.Contains(text, want) {
			t.Errorf("describe text lacks %q:\n%s", want, text)
		}
	}

	if _, err := runWeir(t, "", "group", "reset-offsets", "cg", "--topic", "orders", "--to-earliest", b); err == nil || !strings.Contains(err.Error(), "active members") {
		t.Errorf("reset-offsets with a member: %v, want a refusal", err)
	}
	cons.Close() // leaves the group

	adm := kadm.NewClient(prod)
	committed := func() map[int32]int64 {
		t.Helper()
		offs, err := adm.FetchOffsets(ctx, "cg")
		if err != nil {
			t.Fatal(err)
		}
		m := map[int32]int64{}
		offs.Each(func(o kadm.OffsetResponse) { m[o.Partition] = o.At })
		return m
	}
	ends, err := adm.ListEndOffsets(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	before := committed()

	type resetOut struct {
		Executed bool          `json:"executed"`
		Offsets  []ResetOffset `json:"offsets"`
	}
	dry := groupJSON[resetOut](t, "reset-offsets", "cg", "--topic", "orders", "--to-earliest", b)
	if dry.Executed || len(dry.Offsets) != 3 {
		t.Fatalf("dry run: %+v", dry)
	}
	for _, o := range dry.Offsets {
		if o.New != 0 || o.Current != before[o.Partition] {
			t.Errorf("dry run row %+v (committed %d)", o, before[o.Partition])
		}
	}
	if diff := cmp.Diff(before, committed()); diff != "" {
		t.Errorf("a dry run changed offsets (-before +after):\n%s", diff)
	}

	groupJSON[resetOut](t, "reset-offsets", "cg", "--topic", "orders", "--to-offset", "2", "--execute", b)
	want := map[int32]int64{}
	ends.Each(func(e kadm.ListedOffset) { want[e.Partition] = min(2, e.Offset) })
	if diff := cmp.Diff(want, committed()); diff != "" {
		t.Errorf("after --to-offset 2 (-want +got):\n%s", diff)
	}
	groupJSON[resetOut](t, "reset-offsets", "cg", "--topic", "orders", "--to-datetime", "2999-01-01T00:00:00Z", "--execute", b)
	ends.Each(func(e kadm.ListedOffset) { want[e.Partition] = e.Offset })
	if diff := cmp.Diff(want, committed()); diff != "" {
		t.Errorf("after --to-datetime in the future (-want +got):\n%s", diff)
	}
	if _, err := runWeir(t, "", "group", "reset-offsets", "cg", "--topic", "orders", b); err == nil {
		t.Error("reset-offsets without a --to-* flag succeeded")
	}

	mustRun(t, "", "group", "delete", "cg", b)
	if listed := groupJSON[[]ListedGroup](t, "list", b); len(listed) != 0 {
		t.Errorf("after delete: %+v", listed)
	}
	if _, err := runWeir(t, "", "group", "describe", "nope", b); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("describing an unknown group: %v", err)
	}
	if _, err := runWeir(t, "", "group", "delete", "nope", b); err == nil {
		t.Error("deleting an unknown group succeeded")
	}
}

// Committed offsets and group metadata live in __consumer_offsets on disk:
// a broker reopened on the same data directory reports them again.
func TestGroupOffsetsSurviveBrokerRestart(t *testing.T) {
	dir := t.TempDir()
	open := func() *broker.Broker {
		t.Helper()
		b, err := broker.Open(broker.Options{Listen: "127.0.0.1:0", DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ctx := context.Background()
	b1 := open()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b1.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 4, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	var offs kadm.Offsets
	for p := int32(0); p < 4; p++ {
		offs.Add(kadm.Offset{Topic: "orders", Partition: p, At: int64(10 * (p + 1)), LeaderEpoch: -1})
	}
	if err := adm.CommitAllOffsets(ctx, "billing", offs); err != nil {
		t.Fatal(err)
	}
	// Overwrite one and delete another group's offsets: the latest record
	// per key must win on replay.
	offs2 := kadm.Offsets{}
	offs2.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 99, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, "billing", offs2); err != nil {
		t.Fatal(err)
	}
	if err := adm.CommitAllOffsets(ctx, "gone", offs2); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.DeleteGroups(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}

	b2 := open()
	t.Cleanup(func() { _ = b2.Close() })
	cl2, err := kgo.NewClient(kgo.SeedBrokers(b2.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	got, err := kadm.NewClient(cl2).FetchOffsets(ctx, "billing")
	if err != nil {
		t.Fatal(err)
	}
	m := map[int32]int64{}
	got.Each(func(o kadm.OffsetResponse) { m[o.Partition] = o.At })
	if diff := cmp.Diff(map[int32]int64{0: 99, 1: 20, 2: 30, 3: 40}, m); diff != "" {
		t.Errorf("offsets after restart (-want +got):\n%s", diff)
	}
	if listed := groupJSON[[]ListedGroup](t, "list", "--brokers="+b2.Addr()); len(listed) != 1 || listed[0].Group != "billing" {
		t.Errorf("groups after restart: %+v", listed)
	}
}
