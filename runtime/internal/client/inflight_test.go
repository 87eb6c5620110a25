package client

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Records acknowledged in any order: MarkedDone and WaitMarked wait for
// those added before the last Mark only, Wait for all of them, and a
// failure of either side is reported.
func TestInflightMark(t *testing.T) {
	f := NewInflight()
	if !f.MarkedDone() {
		t.Fatal("an empty tracker waits for something")
	}
	a1, a2 := f.Add(), f.Add()
	f.Mark()
	b1 := f.Add()
	if f.MarkedDone() {
		t.Fatal("MarkedDone with two records before the mark unacknowledged")
	}
	b1.Done(nil) // after the mark, acknowledged first
	a2.Done(nil)
	if f.MarkedDone() {
		t.Fatal("MarkedDone with one record before the mark unacknowledged")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if err := f.WaitMarked(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitMarked = %v with a record before the mark unacknowledged", err)
	}
	b2 := f.Add()
	a1.Done(nil)
	if !f.MarkedDone() {
		t.Fatal("not MarkedDone with every record before the mark acknowledged")
	}
	if err := f.WaitMarked(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A second mark covers what is still unacknowledged of the first
	// batch after it and everything added since.
	f.Mark()
	c := f.Add()
	if f.MarkedDone() {
		t.Fatal("MarkedDone with b2 unacknowledged")
	}
	fail := errors.New("broker said no")
	b2.Done(fail)
	if !f.MarkedDone() || !errors.Is(f.WaitMarked(context.Background()), fail) {
		t.Fatalf("after the failure: MarkedDone %v, WaitMarked %v", f.MarkedDone(), f.WaitMarked(context.Background()))
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel2()
	if err := f.Wait(ctx2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v with a record after the mark unacknowledged", err)
	}
	c.Ack(nil, nil)
	if err := f.Wait(context.Background()); !errors.Is(err, fail) {
		t.Fatalf("Wait = %v, want the first failure", err)
	}
	// A Mark with nothing new keeps the batch.
	f.Mark()
	if d := f.Add(); d != c {
		t.Fatal("a Mark without records started a new batch")
	}
}
