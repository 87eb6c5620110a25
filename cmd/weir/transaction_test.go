package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTransactionCommands: weir transaction list and describe show an open
// transaction, and weir consume --isolation read_committed reads only
// committed records, stopping (with --until-end) at the last stable
// offset, or at a commit marker that ends the partition.
func TestTransactionCommands(t *testing.T) {
	addr := weirCluster(t)
	b := "--brokers=" + addr
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID("cli-tx"), kgo.DefaultProduceTopic("tx"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "tx"); err != nil {
		t.Fatal(err)
	}
	txn := func(v string, end *kgo.TransactionEndTry) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if end != nil {
			if err := cl.EndTransaction(ctx, *end); err != nil {
				t.Fatal(err)
			}
		}
	}
	commit, abort := kgo.TryCommit, kgo.TryAbort
	txn("c1", &commit)
	txn("a1", &abort)
	txn("open1", nil)

	var listed []ListedTransaction
	if err := json.Unmarshal([]byte(mustRun(t, "", "transaction", "list", "--json", b)), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0].TransactionalID != "cli-tx" || listed[0].State != "Ongoing" || listed[0].ProducerID < 0 {
		t.Fatalf("transaction list: %+v, want cli-tx Ongoing", listed)
	}
	var described []DescribedTransaction
	if err := json.Unmarshal([]byte(mustRun(t, "", "transaction", "describe", "cli-tx", "--json", b)), &described); err != nil {
		t.Fatal(err)
	}
	if len(described) != 1 || described[0].State != "Ongoing" || described[0].Start == "" ||
		!cmp.Equal(described[0].Partitions, []string{"tx/0"}) || described[0].ProducerID != listed[0].ProducerID {
		t.Fatalf("transaction describe: %+v", described)
	}

	consume := func(iso string) string {
		return mustRun(t, "", "consume", "tx", "--isolation", iso, "-e", "-f", `%v\n`, b)
	}
	if got := consume("read_committed"); got != "c1\n" {
		t.Fatalf("read_committed with a transaction open: %q, want only c1", got)
	}
	if got := consume("read_uncommitted"); got != "c1\na1\nopen1\n" {
		t.Fatalf("read_uncommitted: %q", got)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	// The partition now ends with a commit marker, which --until-end must
	// count as read.
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := consume("read_committed")
		if got == "c1\nopen1\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("read_committed after the commit: %q", got)
		}
		time.Sleep(20 * time.Millisecond) // the marker is written after EndTxn's answer
	}
	if _, err := runWeir(t, "", "consume", "tx", "--isolation", "bogus", "-e", b); err == nil {
		t.Fatal("--isolation bogus accepted")
	}
}
