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
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
)

// windowStore returns the name of the orders topology's window store (the
// counts per customer and minute).
func windowStore(t testing.TB, topo *streams.Topology) string {
	t.Helper()
	for _, s := range topo.Stores() {
		if s.Kind == state.KindWindow {
			return s.Name
		}
	}
	t.Fatal("the orders topology has no window store")
	return ""
}

// windowsOf returns the windows of customer in the window store, read with
// the typed query view of whichever instance runs the customer's task: the
// truth a lookup through the console must show.
func windowsOf(t testing.TB, ras []runningApp, customer string) ([]windowValue, error) {
	t.Helper()
	store := windowStore(t, ras[0].topo)
	var last error
	for _, ra := range ras {
		var out []windowValue
		for e, err := range runtime.QueryWindow(ra.app, store, serde.String(), serde.Int64()).Fetch(context.Background(), customer, time.UnixMilli(0), time.UnixMilli(1<<50)) {
			if err != nil {
				last = err
				out = nil
				break
			}
			out = append(out, windowValue{Start: e.Start.UTC(), Value: e.Value})
		}
		if out != nil {
			return out, nil
		}
		if last == nil {
			return []windowValue{}, nil
		}
	}
	return nil, last
}

// windowValue is one window of a lookup: its start and count.
type windowValue struct {
	Start time.Time `json:"start"`
	Value int64     `json:"value"`
}

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
			runtime.StandbyReplicas(n-1), runtime.QueryAddr("127.0.0.1:0"),
			runtime.QueryStore(windowStore(t, topo), serde.String(), serde.Int64()))
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
// TestAPIAppsLookup looks keys up through /api/apps/I/lookup, which goes
// through the instance's query endpoint: a customer's windows are those
// the typed query view of the instance running its task returns (asked of
// either instance: the endpoint forwards), an absent key is a 404 answer,
// an unknown store or instance a clear error.
func TestAPIAppsLookup(t *testing.T) {
	brokers := startBroker(t)
	ras := startApps(t, brokers, 4, 2)
	base := startConsole(t, brokers, ras[0].url, ras[1].url)
	store := windowStore(t, ras[0].topo)
	for _, cust := range []string{"c0", "c1", "c2", "c3", "c4"} {
		for i := range ras {
			eventually(t, 30*time.Second, "lookup of "+cust+" equals the store's windows", func() error {
				want, err := windowsOf(t, ras, cust)
				if err != nil {
					return err
				}
				l := get[Lookup](t, fmt.Sprintf("%s/api/apps/%d/lookup?store=%s&key=%s", base, i, store, cust))
				var a struct {
					Windows []windowValue `json:"windows"`
				}
				if l.Status != 200 || json.Unmarshal(l.Answer, &a) != nil {
					return fmt.Errorf("lookup %s on %d: %d %s", cust, i, l.Status, l.Answer)
				}
				if d := cmp.Diff(want, a.Windows); d != "" || len(want) == 0 {
					return fmt.Errorf("lookup %s on instance %d (-store +lookup):\n%s", cust, i, d)
				}
				return nil
			})
		}
	}
	if l := get[Lookup](t, base+"/api/apps/0/lookup?store="+store+"&key=nobody"); l.Status != 200 || !strings.Contains(string(l.Answer), `"windows":[]`) {
		t.Errorf("absent key: %d %s", l.Status, l.Answer)
	}
	call[map[string]string](t, "GET", base+"/api/apps/0/lookup?store=nope&key=a", nil, 404)
	call[map[string]string](t, "GET", base+"/api/apps/7/lookup?store="+store+"&key=a", nil, 404)
	call[map[string]string](t, "GET", base+"/api/apps/0/lookup?key=a", nil, 400)
}

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
