package runtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/dsl"
	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
	"github.com/weir-dev/weir/runtime"
	"github.com/weir-dev/weir/serde"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/streams"
)

// queryTopology counts orders per customer ("per-customer", key-value), per
// customer and minute ("per-minute", window store) and per customer and
// session ("sessions", one-minute gap).
func queryTopology(t *testing.T) *streams.Topology {
	t.Helper()
	b := dsl.NewBuilder()
	in := dsl.Stream(b, orders.InputTopic, serde.String(), orders.OrderSerde())
	in.GroupByKey().Count(dsl.StoreName("per-customer"))
	in.GroupByKey().WindowedBy(dsl.TumblingWindows(time.Minute).Grace(time.Hour)).Count(dsl.StoreName("per-minute"))
	in.GroupByKey().WindowedBySession(dsl.SessionWindowsWithGap(time.Minute).Grace(time.Hour)).Count(dsl.StoreName("sessions"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func startQueryInstance(t *testing.T, c *cluster, extra ...runtime.Option) *instance {
	t.Helper()
	dir := t.TempDir()
	opts := append([]runtime.Option{
		runtime.ApplicationID("query-app"),
		runtime.Brokers(c.addrs...),
		runtime.StateDir(dir),
		runtime.CommitInterval(200 * time.Millisecond),
		runtime.SessionTimeout(c.session),
		runtime.Logger(quietLogger().With("instance", filepath.Base(dir))),
		runtime.QueryAddr("127.0.0.1:0"),
		runtime.QueryStore("per-customer", serde.String(), serde.Int64()),
		runtime.QueryStore("per-minute", serde.String(), serde.Int64()),
		runtime.QueryStore("sessions", serde.String(), serde.Int64()),
	}, extra...)
	a, err := runtime.New(queryTopology(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{app: a, done: make(chan error, 1)}
	go func() { in.done <- a.Run(context.Background()) }()
	t.Cleanup(func() { _ = a.Close() })
	return in
}

// produceOrders sends n orders round-robin over customers, all at ts,
// with franz-go's default partitioner (murmur2 of the key, as Kafka's),
// and returns the count per customer.
func produceOrders(t *testing.T, c *cluster, n, customers int, ts time.Time, opts ...kgo.Opt) map[string]int64 {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.addrs...), kgo.ProducerLinger(5 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	want := map[string]int64{}
	var recs []*kgo.Record
	for i := range n {
		cust := fmt.Sprintf("customer-%03d", i%customers)
		v, err := orders.OrderSerde().Serialize(orders.InputTopic, orders.Order{ID: fmt.Sprint(i), Amount: 1})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: orders.InputTopic, Key: []byte(cust), Value: v, Timestamp: ts})
		want[cust]++
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return want
}

// waitGroupCommitted waits until group has committed the end offset of
// every partition of topic.
func waitGroupCommitted(t *testing.T, c *cluster, group, topic string) {
	t.Helper()
	ends := endOffsets(t, c, topic)
	waitFor(t, 60*time.Second, fmt.Sprintf("group %s committing the end of %s, %v", group, topic, ends), func() error {
		got := groupCommitted(t, c, group)
		for p, end := range ends {
			if got[streams.TopicPartition{Topic: topic, Partition: streams.Partition(p)}] < streams.Offset(end) {
				return fmt.Errorf("committed %v", got)
			}
		}
		return nil
	})
}

// getJSON GETs u and decodes a JSON object answer.
func getJSON(t *testing.T, u string) (int, http.Header, map[string]any) {
	t.Helper()
	cl := &http.Client{Timeout: 15 * time.Second}
	resp, err := cl.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("GET %s: %d, not JSON: %v", u, resp.StatusCode, err)
	}
	return resp.StatusCode, resp.Header, m
}

func keyURL(addr, store, key string, standby bool) string {
	u := "http://" + addr + "/stores/" + store + "/key?key=" + url.QueryEscape(key)
	if standby {
		u += "&standby=true"
	}
	return u
}

// owner returns which of ins runs the task of key in store, by KeyLocation
// of the first, checked against the other instances' own answers.
func owner(t *testing.T, key string, ins ...*instance) (active *instance, loc runtime.KeyLocation) {
	t.Helper()
	loc, err := runtime.LocateKey(ins[0].app, "per-customer", serde.String(), key)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range ins {
		if in.app.QueryAddr() == loc.Active {
			active = in
		}
	}
	if active == nil {
		t.Fatalf("key %q: active instance %q is none of ours", key, loc.Active)
	}
	return active, loc
}

// waitQueryCounts polls the typed view of the instance running each key
// until every customer's count is the expected one.
func waitQueryCounts(t *testing.T, want map[string]int64, ins ...*instance) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		bad := ""
		for cust, n := range want {
			in, _ := owner(t, cust, ins...)
			got, ok, err := runtime.QueryKeyValue(in.app, "per-customer", serde.String(), serde.Int64()).Get(context.Background(), cust)
			if err != nil || !ok || got != n {
				bad = fmt.Sprintf("%s: %d %v %v, want %d", cust, got, ok, err, n)
				break
			}
		}
		if bad == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("counts never reached: %s", bad)
		}
		time.Sleep(50 * time.Millisecond) // polling interval with a deadline
	}
}

// TestQueryTwoInstances runs the counts on two instances with one standby
// per task and reads them through the query endpoint of one instance: keys
// the other instance holds are answered through forwarding, a standby read
// reports its lag, the key location agrees with the data's partitioner, bad
// requests get clear errors, and a down instance a 502 at once.
func TestQueryTwoInstances(t *testing.T) {
	c := newWeir(t, 4)
	a := startQueryInstance(t, c, runtime.StandbyReplicas(1))
	b := startQueryInstance(t, c, runtime.StandbyReplicas(1))
	waitTasks(t, 4, a, b)
	base := time.UnixMilli(1_700_000_000_000).Truncate(time.Minute)
	want := produceOrders(t, c, 2000, 40, base)
	waitQueryCounts(t, want, a, b)

	// Pick a key b holds and ask a.
	var key string
	var loc runtime.KeyLocation
	for cust := range want {
		if in, l := owner(t, cust, a, b); in == b {
			key, loc = cust, l
			break
		}
	}
	if key == "" {
		t.Fatal("b holds no customer")
	}
	// The location is where the data went: the partition franz-go's
	// default partitioner chose is the task's, and b runs that task.
	if p := streams.KeyPartition([]byte(key), 4); int32(p) != loc.Partition || loc.Task.Partition != p {
		t.Fatalf("location of %q: partition %d (task %s), the data's partitioner says %d", key, loc.Partition, loc.Task, p)
	}
	if len(loc.Standbys) != 1 || loc.Standbys[0] != a.app.QueryAddr() {
		t.Fatalf("location of %q: standbys %v, want a (%s)", key, loc.Standbys, a.app.QueryAddr())
	}
	// Locally, a does not have it.
	if _, _, err := runtime.QueryKeyValue(a.app, "per-customer", serde.String(), serde.Int64()).Get(context.Background(), key); !state.IsNotLocal(err) {
		t.Fatalf("a's own view of %q: err %v, want not local", key, err)
	}

	status, _, m := getJSON(t, keyURL(a.app.QueryAddr(), "per-customer", key, false))
	if status != http.StatusOK || m["value"] != float64(want[key]) || m["instance"] != b.app.QueryAddr() || m["forwarded"] != true || m["standby"] != false {
		t.Fatalf("a asked for %q (held by b): %d %v; want value %d from %s, forwarded", key, status, m, want[key], b.app.QueryAddr())
	}
	// A window fetch of the same key, forwarded too.
	status, _, m = getJSON(t, "http://"+a.app.QueryAddr()+"/stores/per-minute/windows?key="+key)
	if ws, _ := m["windows"].([]any); status != http.StatusOK || len(ws) != 1 || ws[0].(map[string]any)["value"] != float64(want[key]) ||
		ws[0].(map[string]any)["start"] != base.UTC().Format(time.RFC3339) {
		t.Fatalf("windows of %q through a: %d %v", key, status, m)
	}

	// A session fetch, forwarded too: every order is at base, one session.
	status, _, m = getJSON(t, "http://"+a.app.QueryAddr()+"/stores/sessions/sessions?key="+key)
	if ss, _ := m["sessions"].([]any); status != http.StatusOK || len(ss) != 1 || ss[0].(map[string]any)["value"] != float64(want[key]) || m["forwarded"] != true {
		t.Fatalf("sessions of %q through a: %d %v", key, status, m)
	}
	// The typed views of the instance holding the key agree.
	var windows []int64
	for e, err := range runtime.QueryWindow(b.app, "per-minute", serde.String(), serde.Int64()).Fetch(context.Background(), key, base, base.Add(time.Hour)) {
		if err != nil {
			t.Fatal(err)
		}
		windows = append(windows, e.Value)
	}
	var sessions []int64
	for e, err := range runtime.QuerySession(b.app, "sessions", serde.String(), serde.Int64()).Fetch(context.Background(), key) {
		if err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, e.Value)
	}
	if fmt.Sprint(windows, sessions) != fmt.Sprint([]int64{want[key]}, []int64{want[key]}) {
		t.Fatalf("typed views on b: windows %v, sessions %v, want one of %d each", windows, sessions, want[key])
	}

	// A standby read on a: a keeps a standby copy of b's task; it answers,
	// saying it is a standby and how far behind, and catches up.
	deadline := time.Now().Add(30 * time.Second)
	lastLag := -2.0
	for {
		status, _, m = getJSON(t, keyURL(a.app.QueryAddr(), "per-customer", key, true))
		// Until a has opened its standby copy, the read goes to the
		// active task on b, which answers as such.
		if m["standby"] == false {
			if status != http.StatusOK || m["instance"] != b.app.QueryAddr() || m["value"] != float64(want[key]) {
				t.Fatalf("standby read of %q before a's copy opened: %d %v", key, status, m)
			}
			if time.Now().After(deadline) {
				t.Fatal("a never opened its standby copy")
			}
			time.Sleep(50 * time.Millisecond) // polling interval with a deadline
			continue
		}
		// A copy that has not caught up may not have the key yet: 404,
		// saying it is a standby and how far behind.
		if status != http.StatusOK && status != http.StatusNotFound || m["instance"] != a.app.QueryAddr() {
			t.Fatalf("standby read of %q on a: %d %v", key, status, m)
		}
		lag, _ := m["lag"].(float64)
		if lag != lastLag {
			t.Logf("standby read of %q: %d, lag %v", key, status, lag)
			lastLag = lag
		}
		if lag < 0 && lag != -1 {
			t.Fatalf("standby read: lag %v", lag)
		}
		// The copy may be behind (its lag counts changelog records it has
		// not applied; what the active has not flushed to the changelog
		// yet is not counted), never ahead: a count it shows is at most
		// the truth, and it reaches the truth.
		v, _ := m["value"].(float64)
		if status == http.StatusOK && v > float64(want[key]) {
			t.Fatalf("standby read of %q: %v, more than the %d orders sent", key, v, want[key])
		}
		if lag == 0 && v == float64(want[key]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("standby never caught up: %v", m)
		}
		time.Sleep(50 * time.Millisecond) // polling interval with a deadline
	}

	// A range over every partition, in pages of 7, forwarded where b holds
	// them: every customer once, with its count.
	seen := map[string]int64{}
	cursor := ""
	for pages := 0; ; pages++ {
		u := "http://" + a.app.QueryAddr() + "/stores/per-customer/range?limit=7"
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		status, _, m = getJSON(t, u)
		if status != http.StatusOK {
			t.Fatalf("range page %d: %d %v", pages, status, m)
		}
		es, _ := m["entries"].([]any)
		if len(es) > 7 {
			t.Fatalf("range page of %d entries, limit 7", len(es))
		}
		for _, e := range es {
			e := e.(map[string]any)
			k := e["key"].(string)
			if _, dup := seen[k]; dup {
				t.Fatalf("range: %q twice", k)
			}
			seen[k] = int64(e["value"].(float64))
		}
		cursor, _ = m["cursor"].(string)
		if cursor == "" {
			break
		}
		if pages > 100 {
			t.Fatal("range never ends")
		}
	}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("range through a:\n got %v\nwant %v", seen, want)
	}

	// Bad input: each a clear error.
	for _, tc := range []struct {
		url    string
		status int
	}{
		{"/stores/nope/key?key=x", http.StatusNotFound},
		{"/stores/per-customer/key", http.StatusBadRequest},
		{"/stores/per-customer/range?limit=5000", http.StatusBadRequest},
		{"/stores/per-customer/range?cursor=zz", http.StatusBadRequest},
		{"/stores/per-minute/windows?key=a&from=yesterday", http.StatusBadRequest},
		{"/stores/per-customer/windows?key=" + key, http.StatusBadRequest},
		{"/nowhere", http.StatusNotFound},
	} {
		status, _, m := getJSON(t, "http://"+a.app.QueryAddr()+tc.url)
		if status != tc.status || m["error"] == nil || m["error"] == "" {
			t.Errorf("GET %s: %d %v, want %d with an error", tc.url, status, m, tc.status)
		}
		t.Logf("GET %s: %d %s", tc.url, status, m["error"])
	}

	// b dies without leaving once its offsets are committed: at least
	// once, what an instance processed after its last commit is processed
	// again by the next owner, and a pipelined commit reaches the group
	// one or two commit intervals after the changelog it covers. (The
	// standby read above usually takes seconds, a's copy applying every
	// few seconds, but not when the copy has just applied.) Until the
	// group notices, a still routes b's keys to b, and says at once that
	// b does not answer.
	waitGroupCommitted(t, c, "query-app", orders.InputTopic)
	b.app.Abandon()
	start := time.Now()
	status, _, m = getJSON(t, keyURL(a.app.QueryAddr(), "per-customer", key, false))
	if status != http.StatusBadGateway && status != http.StatusServiceUnavailable {
		t.Fatalf("key of a dead instance: %d %v, want 502 (or 503 once the group moved it)", status, m)
	}
	t.Logf("key held by a dead instance: %d in %v: %v", status, time.Since(start), m["error"])
	// Then a takes the task over and answers itself.
	deadline = time.Now().Add(30 * time.Second)
	for {
		status, _, m = getJSON(t, keyURL(a.app.QueryAddr(), "per-customer", key, false))
		if status == http.StatusOK {
			if m["value"] != float64(want[key]) || m["instance"] != a.app.QueryAddr() {
				t.Fatalf("after takeover: %v, want %d from a (the group's offsets: %v)", m, want[key], groupCommitted(t, c, "query-app"))
			}
			break
		}
		if status != http.StatusBadGateway && status != http.StatusServiceUnavailable {
			t.Fatalf("during takeover: %d %v", status, m)
		}
		if time.Now().After(deadline) {
			t.Fatalf("a never took %q over: %d %v", key, status, m)
		}
		time.Sleep(50 * time.Millisecond) // polling interval with a deadline
	}
	a.stop(t)
}

// TestQueryBadKey: a store whose keys are numbers refuses a key that does
// not parse as one, naming the store and the key.
func TestQueryBadKey(t *testing.T) {
	c := newWeir(t, 2)
	a := startQueryInstance(t, c, runtime.QueryStore("per-customer", serde.Int64(), serde.Int64()))
	waitTasks(t, 2, a)
	status, _, m := getJSON(t, keyURL(a.app.QueryAddr(), "per-customer", "not-a-number", false))
	if status != http.StatusBadRequest {
		t.Fatalf("undecodable key: %d %v", status, m)
	}
	t.Logf("undecodable key: %s", m["error"])
	a.stop(t)
}

// slowConn delays reads to about rate bytes per second, so that a restore
// takes long enough to be seen.
type slowConn struct {
	net.Conn
	rate int
}

func (c slowConn) Read(p []byte) (int, error) {
	if len(p) > 4096 {
		p = p[:4096]
	}
	n, err := c.Conn.Read(p)
	time.Sleep(time.Duration(n) * time.Second / time.Duration(c.rate)) // throttling, not synchronization
	return n, err
}

// TestQueryDuringRestore: a third instance joins with an empty state
// directory and a slow network, so the task it takes restores for a
// while. Reads of that task's keys through another instance answer 503
// with Retry-After while it restores, never a wrong count, and the right
// count once it has.
func TestQueryDuringRestore(t *testing.T) {
	c := newWeir(t, 4)
	a := startQueryInstance(t, c, runtime.NoWriteCache())
	b := startQueryInstance(t, c, runtime.NoWriteCache())
	waitTasks(t, 4, a, b)
	base := time.UnixMilli(1_700_000_000_000).Truncate(time.Minute)
	want := produceOrders(t, c, 6000, 40, base)
	waitQueryCounts(t, want, a, b)

	var d net.Dialer
	slow := kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, host)
		if err != nil {
			return nil, err
		}
		return slowConn{Conn: conn, rate: 40 << 10}, nil
	})
	n := startQueryInstance(t, c, runtime.NoWriteCache(), runtime.ClientOptions(slow))

	// Poll every key through a until n runs a task and answers for it.
	var restoring, moving, answeredByN int
	deadline := time.Now().Add(60 * time.Second)
	for answeredByN == 0 {
		for cust, cnt := range want {
			status, h, m := getJSON(t, keyURL(a.app.QueryAddr(), "per-customer", cust, false))
			switch status {
			case http.StatusOK:
				if m["value"] != float64(cnt) {
					t.Fatalf("%s: value %v, want %d (answered by %v)", cust, m["value"], cnt, m["instance"])
				}
				if m["instance"] == n.app.QueryAddr() {
					answeredByN++
				}
			case http.StatusServiceUnavailable:
				if h.Get("Retry-After") == "" {
					t.Fatalf("503 without Retry-After: %v", m)
				}
				switch m["reason"] {
				case "not_ready":
					restoring++
					if restoring == 1 {
						t.Logf("%s while the new instance restores: %v", cust, m["error"])
					}
				case "moving":
					moving++
				default:
					t.Fatalf("503 without a reason: %v", m)
				}
			default:
				t.Fatalf("%s: %d %v", cust, status, m)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new instance never answered (503s seen: %d)", restoring)
		}
	}
	if restoring == 0 {
		t.Fatal("no read saw the restore: the test did not test it")
	}
	t.Logf("%d answers said the partition was restoring, %d that it was moving; then the new instance answered", restoring, moving)
	for _, in := range []*instance{a, b, n} {
		in.stop(t)
	}
}
