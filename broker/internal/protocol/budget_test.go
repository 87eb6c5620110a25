package protocol

import (
	"context"
	"testing"
	"time"
)

func TestByteBudget(t *testing.T) {
	b := newByteBudget(100)
	ctx := context.Background()
	if !b.acquire(ctx, 60) || !b.acquire(ctx, 40) {
		t.Fatal("acquire within the budget failed")
	}
	got := make(chan bool, 1)
	go func() { got <- b.acquire(ctx, 50) }()
	select {
	case <-got:
		t.Fatal("acquire beyond the budget did not wait")
	default:
	}
	b.release(60)
	select {
	case ok := <-got:
		if !ok {
			t.Fatal("acquire failed after release")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("acquire not woken by release")
	}
	cctx, cancel := context.WithCancel(ctx)
	res := make(chan bool, 1)
	go func() { res <- b.acquire(cctx, 100) }()
	cancel()
	select {
	case ok := <-res:
		if ok {
			t.Fatal("acquire succeeded beyond the budget")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("acquire not ended by its context")
	}
}
