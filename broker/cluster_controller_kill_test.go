package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestClusterCreateTopicsControllerKilled: 100 CreateTopics with
// replication factor 3 on a 3-node cluster while the active controller is
// stopped once (Broker.Close, in process, as the 31st is handed out with
// creations in flight): every topic whose creation succeeded exists, once,
// on every surviving node; a topic refused with a definite error does not
// exist; and the surviving nodes' images agree within 5 s. NB: with two
// brokers left, replication factor 3 is refused, so the creations after
// the stop are the refused ones.
func TestClusterCreateTopicsControllerKilled(t *testing.T) {
	c := startTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, adm := c.adminWithController(t, ctx)
	// Four workers create ck000..ck099 concurrently, so that the stop
	// lands while creations are in flight.
	var mu sync.Mutex
	var succeeded, refused, unsure []string
	names := make(chan string)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range names {
				rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := adm.CreateTopic(rctx, 1, 3, nil, name)
				rcancel()
				var ke *kerr.Error
				mu.Lock()
				switch {
				case err == nil:
					succeeded = append(succeeded, name)
				case errors.As(err, &ke) && !ke.Retriable:
					refused = append(refused, name)
				default:
					unsure = append(unsure, name) // may or may not have committed
				}
				mu.Unlock()
			}
		}()
	}
	killed := -1
	for i := range 100 {
		if i == 30 {
			killed = int(c.brokers[0].cn.Status().Leader) - 1
			if killed < 0 {
				t.Fatal("no raft leader known before the kill")
			}
			t.Logf("stopping the active controller, node %d, with creations in flight", killed+1)
			go func() { _ = c.brokers[killed].Close() }() // cleanup's Close waits for it
		}
		names <- fmt.Sprintf("ck%03d", i)
	}
	close(names)
	wg.Wait()
	slices.Sort(succeeded)
	t.Logf("succeeded %d, refused %d, unsure %d", len(succeeded), len(refused), len(unsure))
	if len(succeeded) < 20 { // at least 26 completed before the stop
		t.Fatalf("only %d creations succeeded: %v", len(succeeded), succeeded)
	}
	eventually(t, 5*time.Second, "surviving nodes' images agree", func() error {
		var first []string
		for i, b := range c.brokers {
			if i == killed {
				continue
			}
			var names []string
			for _, tp := range b.cn.Image().Topics() {
				names = append(names, string(tp.Name))
			}
			slices.Sort(names)
			if first == nil {
				first = names
			} else if !slices.Equal(first, names) {
				return fmt.Errorf("node %d topics %v, another node %v", i+1, names, first)
			}
			if len(slices.Compact(slices.Clone(names))) != len(names) {
				return fmt.Errorf("node %d has a topic twice: %v", i+1, names)
			}
			for _, s := range succeeded {
				if _, ok := slices.BinarySearch(names, s); !ok {
					return fmt.Errorf("node %d lacks %s, whose creation succeeded", i+1, s)
				}
			}
			for _, s := range refused {
				if _, ok := slices.BinarySearch(names, s); ok {
					return fmt.Errorf("node %d has %s, whose creation was refused", i+1, s)
				}
			}
		}
		return nil
	})
}
