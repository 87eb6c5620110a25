package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
	"github.com/weir-dev/weir/runtime"
	"github.com/weir-dev/weir/streams"
)

// description mirrors the runtime's /application answer (the parts the
// tests check).
type description struct {
	Application string `json:"application"`
	Busy        bool   `json:"busy"`
	Topology    struct {
		Text          string `json:"text"`
		Subtopologies []struct {
			ID     int      `json:"id"`
			Nodes  []string `json:"nodes"`
			Stores []string `json:"stores"`
		} `json:"subtopologies"`
		Nodes []struct {
			Name     string   `json:"name"`
			Kind     string   `json:"kind"`
			Children []string `json:"children"`
			Stores   []string `json:"stores"`
		} `json:"nodes"`
	} `json:"topology"`
	Tasks []struct {
		ID     string `json:"id"`
		Type   string `json:"type"`
		Stores []struct {
			Name string `json:"name"`
		} `json:"stores"`
	} `json:"tasks"`
	SinceCommitMs int64            `json:"since_commit_ms"`
	Dropped       map[string]int64 `json:"dropped"`
}

// runningApp is a stream application (the orders-per-minute example's
// windowed count) running against the test's broker.
type runningApp struct {
	app  *runtime.Application
	topo *streams.Topology
	url  string
}

// startApp runs the orders-per-minute topology on brokers, its input
// topic with partitions partitions, and produces orders (one of them late
// enough to be dropped). It returns once the instance runs every task.
func startApp(t testing.TB, brokers []string, partitions int32) runningApp {
	t.Helper()
	return startApps(t, brokers, partitions, 1)[0]
}

// startApps is startApp with n instances, each with n-1 standby replicas
// per task; it returns once they share every task.
func startApps(t testing.TB, brokers []string, partitions int32, n int) []runningApp {
	t.Helper()
	cl := testClient(t, brokers)
	for _, topic := range []string{orders.InputTopic, orders.UpdatesTopic, orders.FinalTopic} {
		createTopic(t, kadm.NewClient(cl), topic, partitions, 1)
	}
	var out []runningApp
	var dones []chan error
	for range n {
		topo, err := orders.Topology(true)
		if err != nil {
			t.Fatal(err)
		}
		app, err := runtime.New(topo, runtime.ApplicationID("console-test"), runtime.Brokers(brokers...),
			runtime.StateDir(t.TempDir()), runtime.MetricsAddr("127.0.0.1:0"), runtime.CommitInterval(200*time.Millisecond),
			runtime.StandbyReplicas(n-1))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- app.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("app: %v", err)
			}
			_ = app.Close()
		})
		out = append(out, runningApp{app: app, topo: topo, url: "http://" + app.MetricsAddr()})
		dones = append(dones, done)
	}
	now := time.Now()
	for i := range 40 {
		v, err := orders.OrderSerde().Serialize(orders.InputTopic, orders.Order{ID: strconv.Itoa(i), Amount: int64(i)})
		if err != nil {
			t.Fatal(err)
		}
		ts := now
		if i == 39 {
			ts = now.Add(-time.Hour) // far past the grace: dropped as late
		}
		r := &kgo.Record{Topic: orders.InputTopic, Partition: int32(i) % partitions, Key: []byte("c" + strconv.Itoa(i%5)), Value: v, Timestamp: ts}
		if err := cl.ProduceSync(testCtx(t), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 60*time.Second, "the instances share every task", func() error {
		total := 0
		for i, ra := range out {
			select {
			case err := <-dones[i]:
				t.Fatalf("instance %d stopped: %v", i, err)
			default:
			}
			k := len(ra.app.Tasks())
			if k == 0 {
				return fmt.Errorf("instance %d has no task", i)
			}
			total += k
		}
		if total != int(partitions) {
			return fmt.Errorf("%d tasks", total)
		}
		return nil
	})
	return out
}

// TestAPIAppsRuntime reads a running application's description through
// /api/apps: its topology is Topology.Describe's, node for node and edge
// for edge; its tasks are the instance's; its dropped count is what its
// metrics say.
func TestAPIAppsRuntime(t *testing.T) {
	brokers := startBroker(t)
	ra := startApp(t, brokers, 3)
	base := startConsole(t, brokers, ra.url)
	var d description
	eventually(t, 30*time.Second, "the late order counted and a commit done", func() error {
		apps := get[[]App](t, base+"/api/apps")
		if len(apps) != 1 || !apps[0].Up {
			return fmt.Errorf("apps %+v", apps)
		}
		if g := apps[0].Group; g == nil || g.Group != "console-test" || len(g.Members) != 1 ||
			strings.Join(g.Members[0].Assigned, " ") != "orders/0 orders/1 orders/2" {
			return fmt.Errorf("the application's group: %+v", apps[0].Group)
		}
		d = description{}
		if err := json.Unmarshal(apps[0].Application, &d); err != nil {
			t.Fatal(err)
		}
		if sum(d.Dropped) < 1 || d.SinceCommitMs < 0 {
			return fmt.Errorf("dropped %v, since commit %d", d.Dropped, d.SinceCommitMs)
		}
		return nil
	})
	if d.Topology.Text != ra.topo.Describe() {
		t.Errorf("topology text:\n%s\nwant Describe's:\n%s", d.Topology.Text, ra.topo.Describe())
	}
	type node struct {
		Name, Kind       string
		Children, Stores []string
	}
	var got, want []node
	for _, n := range d.Topology.Nodes {
		got = append(got, node{n.Name, n.Kind, n.Children, n.Stores})
	}
	for _, n := range ra.topo.Nodes() {
		want = append(want, node{n.Name, n.Kind.String(), orNoneT(n.Children), orNoneT(n.Stores)})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("topology nodes (-Nodes() +described):\n%s", diff)
	}
	var tasks []string
	for _, tk := range d.Tasks {
		if tk.Type == "active" {
			tasks = append(tasks, tk.ID)
		}
		if len(tk.Stores) != len(ra.topo.Subtopologies()[0].Stores) {
			t.Errorf("task %s stores %+v, want the sub-topology's %v", tk.ID, tk.Stores, ra.topo.Subtopologies()[0].Stores)
		}
	}
	var wantTasks []string
	for _, id := range ra.app.Tasks() {
		wantTasks = append(wantTasks, id.String())
	}
	if diff := cmp.Diff(wantTasks, tasks); diff != "" {
		t.Errorf("active tasks (-Tasks() +described):\n%s", diff)
	}
	mfs, err := ra.app.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var late float64
	for _, mf := range mfs {
		if mf.GetName() == "weir_dropped_records_total" {
			for _, m := range mf.GetMetric() {
				late += m.GetCounter().GetValue()
			}
		}
	}
	if float64(sum(d.Dropped)) > late || late < 1 {
		t.Errorf("described drops %v, metrics say %v", d.Dropped, late)
	}
}

func orNoneT(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func sum(m map[string]int64) (n int64) {
	for _, v := range m {
		n += v
	}
	return n
}
