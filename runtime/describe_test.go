package runtime_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
	"github.com/weir-dev/weir/runtime"
)

// applicationJSON is the part of /application the test checks.
type applicationJSON struct {
	Application string `json:"application"`
	Busy        bool   `json:"busy"`
	Topology    struct {
		Text string `json:"text"`
	} `json:"topology"`
	Tasks []struct {
		ID     string `json:"id"`
		Type   string `json:"type"`
		Stores []struct {
			Name      string `json:"name"`
			Remaining int64  `json:"remaining"`
		} `json:"stores"`
	} `json:"tasks"`
}

func describeApp(addr string) (applicationJSON, error) {
	var d applicationJSON
	resp, err := http.Get("http://" + addr + "/application")
	if err != nil {
		return d, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return d, fmt.Errorf("/application: %s", resp.Status)
	}
	return d, json.NewDecoder(resp.Body).Decode(&d)
}

// TestApplicationEndpoint runs two instances with one standby replica
// each and reads their /application while orders flow and while they
// rebalance (under the race detector in make test): each instance lists
// its own active tasks and, as standbys, the other's; the topology is
// Describe's.
func TestApplicationEndpoint(t *testing.T) {
	c := newWeir(t, 4)
	opts := []runtime.Option{runtime.StandbyReplicas(1), runtime.MetricsAddr("127.0.0.1:0")}
	a := startInstance(t, c, t.TempDir(), opts...)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var fetchErr error
	wg.Add(1)
	go func() { // reads the endpoint all along, rebalances included
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := describeApp(a.app.MetricsAddr()); err != nil && fetchErr == nil {
				fetchErr = err
			}
			time.Sleep(5 * time.Millisecond) // pacing, not synchronization
		}
	}()
	b := startInstance(t, c, t.TempDir(), opts...)
	waitTasks(t, 4, a, b)
	p := newProducer(t, c)
	seq := 0
	p.send(t, 200, 20, time.UnixMilli(1_700_000_000_000), &seq)

	ids := func(in *instance) []string {
		var out []string
		for _, id := range in.app.Tasks() {
			out = append(out, id.String())
		}
		return out
	}
	topo, err := orders.Topology(false) // startInstance's
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var problems []string
		for _, pair := range [][2]*instance{{a, b}, {b, a}} {
			self, other := pair[0], pair[1]
			d, err := describeApp(self.app.MetricsAddr())
			if err != nil {
				t.Fatal(err)
			}
			if d.Topology.Text != topo.Describe() {
				t.Fatalf("topology text:\n%s\nwant:\n%s", d.Topology.Text, topo.Describe())
			}
			var active, standby []string
			for _, tk := range d.Tasks {
				if tk.Type == "active" {
					active = append(active, tk.ID)
				} else {
					standby = append(standby, strings.TrimSuffix(tk.ID, "-standby"))
				}
				if len(tk.Stores) != 1 || tk.Stores[0].Name != "orders-per-minute-store" {
					problems = append(problems, fmt.Sprintf("task %s stores %+v", tk.ID, tk.Stores))
				}
			}
			slices.Sort(standby)
			if d := cmp.Diff(ids(self), active); d != "" {
				problems = append(problems, "active tasks (-Tasks() +described):\n"+d)
			}
			if d := cmp.Diff(ids(other), standby); d != "" {
				problems = append(problems, "standby tasks (-the other's Tasks() +described):\n"+d)
			}
		}
		if len(problems) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(strings.Join(problems, "\n"))
		}
		time.Sleep(100 * time.Millisecond) // polling interval with a deadline
	}
	close(stop)
	wg.Wait()
	if fetchErr != nil {
		t.Errorf("/application failed while the instances rebalanced: %v", fetchErr)
	}
}
