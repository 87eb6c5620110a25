package protocol

import (
	"context"
	"testing"
	"time"
)

func TestByteBudget(t *testing.T) {
	b := newByteBudget(100)
	ctx := context.Background()
	if b.acquire(ctx, 60) != nil || b.acquire(ctx, 40) != nil {
		t.Fatal("acquire within the budget failed")
	}
	if b.tryAcquire(1) {
		t.Fatal("tryAcquire beyond the budget succeeded")
	}
	got := make(chan error, 1)
	go func() { got <- b.acquire(ctx, 50) }()
	select {
	case <-got:
		t.Fatal("acquire beyond the budget did not wait")
	default:
	}
	b.release(60)
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("acquire failed after release: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("acquire not woken by release")
	}
	if n := b.inUse(); n != 90 {
		t.Fatalf("in use %d, want 90", n)
	}
	cctx, cancel := context.WithCancel(ctx)
	res := make(chan error, 1)
	go func() { res <- b.acquire(cctx, 100) }()
	cancel()
	select {
	case err := <-res:
		if err == nil {
			t.Fatal("acquire succeeded beyond the budget")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("acquire not ended by its context")
	}
	if n := b.inUse(); n != 90 {
		t.Fatalf("in use %d after a cancelled acquire, want 90", n)
	}
}

// TestByteBudgetFIFO checks that a large waiter is not starved by smaller
// requests arriving after it: once it waits, they queue behind it.
func TestByteBudgetFIFO(t *testing.T) {
	b := newByteBudget(100)
	ctx := context.Background()
	if err := b.acquire(ctx, 50); err != nil {
		t.Fatal(err)
	}
	large := make(chan error, 1)
	go func() { large <- b.acquire(ctx, 100) }()
	// Wait until the large acquire is queued: from then on a small one
	// that would fit must not get ahead of it.
	deadline := time.Now().Add(20 * time.Second)
	for b.tryAcquire(10) {
		b.release(10)
		if time.Now().After(deadline) {
			t.Fatal("large acquire never queued")
		}
		time.Sleep(time.Millisecond) // polling with a deadline
	}
	small := make(chan error, 1)
	go func() { small <- b.acquire(ctx, 10) }()
	b.release(50)
	select {
	case err := <-large:
		if err != nil {
			t.Fatal(err)
		}
	case <-small:
		t.Fatal("a small acquire got ahead of the large one waiting before it")
	case <-time.After(20 * time.Second):
		t.Fatal("large acquire not woken")
	}
	select {
	case <-small:
		t.Fatal("small acquire succeeded while the large one holds everything")
	default:
	}
	b.release(100)
	select {
	case err := <-small:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("small acquire not woken")
	}
}
