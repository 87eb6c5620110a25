package console

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The browser tests open the console's pages in Debian's chromium,
// headless, driven by chromedp, against an in-process Weir broker (and a
// stream application for the applications page), and check that what the
// page shows is the cluster's truth. They run under `make test-browser`
// (WEIR_BROWSER=1); each saves screenshots under $WEIR_SCREENSHOTS (default
// $TMPDIR/weir-console-screenshots) and logs where.

// renderBound is the acceptance bound of a page's first draw.
const renderBound = time.Second

// browser returns a chromedp context on a fresh headless chromium, closed
// when the test ends. It skips the test unless WEIR_BROWSER=1, and skips
// it loudly without chromium (fails with WEIR_REQUIRE_CLIENTS=1).
func browser(t *testing.T) context.Context {
	t.Helper()
	if os.Getenv("WEIR_BROWSER") != "1" {
		t.Skip("browser test: run with WEIR_BROWSER=1 (make test-browser)")
	}
	path, err := exec.LookPath("chromium")
	if err != nil {
		msg := "chromium not installed: apt-get install chromium (" + err.Error() + ")"
		if os.Getenv("WEIR_REQUIRE_CLIENTS") == "1" {
			t.Fatalf("WEIR_REQUIRE_CLIENTS=1 but %s", msg)
		}
		t.Skip("SKIPPING: " + msg)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.WindowSize(1440, 900),
		chromedp.NoSandbox, chromedp.Flag("disable-gpu", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first action starts the browser; it must not run under a
	// timeout of its own (that would stop the browser with it).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// do runs actions with a deadline.
func do(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatal(err)
	}
}

// eval evaluates a JavaScript expression in the page and decodes its
// value (JSON) into a T.
func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitFor waits until the JavaScript predicate is true in the page. It
// evaluates it every 50 ms: an evaluation that fails (the page's document
// is being replaced by a navigation) is tried again.
func waitFor(t *testing.T, ctx context.Context, what, js string) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var ok bool
		ok, err = chromedp.Run(ectx, chromedp.Evaluate[bool](js))
		cancel()
		if err == nil && ok {
			return
		}
		time.Sleep(50 * time.Millisecond) // polling interval with a deadline
	}
	body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText.slice(0, 2000)`))
	t.Fatalf("waiting for %s (%s): not true after 45s (last error %v)\npage text:\n%s", what, js, err, body)
}

// open loads the console at a route in a fresh page and waits for its
// first draw; it returns the draw's time, measured in the browser from
// the navigation's start.
func open(t *testing.T, ctx context.Context, base, route string) time.Duration {
	t.Helper()
	do(t, ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(base+"/#/"+route))
	waitFor(t, ctx, "the page's first draw", fmt.Sprintf(`document.body.dataset.rendered === %q`, route))
	ms := eval[float64](t, ctx, `window.weirRendered.ms`)
	return time.Duration(ms * float64(time.Millisecond))
}

// screenshot saves the page as name.png for review.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("WEIR_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "weir-console-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// TestBrowserCluster opens the cluster page of a 3-node cluster: the
// brokers, their addresses and the partitions each leads are Metadata's,
// the controller is DescribeCluster's; a topic created while the page is
// open shows up without a reload.
func TestBrowserCluster(t *testing.T) {
	ctx := browser(t)
	brokers, closers := startClusterClosers(t, 3)
	base := startConsole(t, brokers)
	adm := kadm.NewClient(testClient(t, brokers[:2]))
	eventually(t, 30*time.Second, "topic created with 3 replicas", func() error {
		resp, err := adm.CreateTopic(testCtx(t), 6, 3, nil, "orders")
		if err == nil {
			err = resp.Err
		}
		return err
	})
	eventually(t, 30*time.Second, "every partition has a leader", func() error {
		md, err := adm.Metadata(testCtx(t), "orders")
		if err != nil {
			return err
		}
		for _, p := range md.Topics["orders"].Partitions {
			if p.Leader < 0 || len(p.ISR) != 3 {
				return fmt.Errorf("partition %d: leader %d isr %v", p.Partition, p.Leader, p.ISR)
			}
		}
		return nil
	})
	took := open(t, ctx, base, "cluster")
	t.Logf("cluster page drawn in %v", took)
	md, err := adm.Metadata(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		ID      int    `json:"id"`
		Addr    string `json:"addr"`
		Leaders int    `json:"leaders"`
		Role    string `json:"role"`
	}
	got := eval[[]row](t, ctx, `[...document.querySelectorAll("#brokers tr[data-node]")].map(r => ({
		id: +r.dataset.node, addr: r.querySelector("[data-k=addr]").textContent,
		leaders: +r.querySelector("[data-k=leaders]").textContent, role: r.querySelector("[data-k=role]").textContent}))`)
	leaders := map[int32]int{}
	for _, td := range md.Topics {
		for _, p := range td.Partitions {
			leaders[p.Leader]++
		}
	}
	var want []row
	for _, b := range md.Brokers {
		role := "voter, broker"
		if b.NodeID == md.Controller {
			role += ", controller"
		}
		want = append(want, row{ID: int(b.NodeID), Addr: b.Host + ":" + strconv.Itoa(int(b.Port)), Leaders: leaders[b.NodeID], Role: role})
	}
	slices.SortFunc(want, func(a, b row) int { return a.ID - b.ID })
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("brokers shown (-Metadata +page):\n%s", d)
	}
	if c := eval[string](t, ctx, `document.querySelector("#controller").textContent`); c != strconv.Itoa(int(md.Controller)) {
		t.Errorf("controller shown %q, Metadata says %d", c, md.Controller)
	}
	if n := eval[string](t, ctx, `document.querySelector("#under-replicated-count").textContent + "/" + document.querySelector("#offline-count").textContent`); n != "0/0" {
		t.Errorf("under-replicated/offline shown %s, want 0/0", n)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#disk tbody tr").length`); n != 3 {
		t.Errorf("disk use shows %d log directories, want one per node (3): %q", n, eval[string](t, ctx, `document.querySelector("#disk").textContent`))
	}
	screenshot(t, ctx, "cluster")

	// Live update: no reload (the marker survives), the new topic's
	// partitions are counted.
	eval[bool](t, ctx, `window.noReload = true`)
	before := eval[string](t, ctx, `document.querySelector(".cards .card:nth-child(5) .n").textContent`)
	createTopic(t, adm, "payments", 4, 3)
	waitFor(t, ctx, "the new topic's partitions counted", fmt.Sprintf(`window.noReload === true && document.querySelector(".cards .card:nth-child(5) .n").textContent === %q`, strconv.Itoa(mustAtoi(t, before)+4)))

	// Node 3 stops: its partitions are shown under-replicated, as
	// Metadata lists them, and node 3 not live.
	closers[2]()
	waitFor(t, ctx, "node 3 shown down", `document.querySelector("#brokers tr[data-node='3']").classList.contains("bad")`)
	eventually(t, 30*time.Second, "the under-replicated partitions shown are Metadata's", func() error {
		md, err := adm.Metadata(testCtx(t))
		if err != nil {
			return err
		}
		var want []string
		for _, td := range md.Topics.Sorted() {
			for _, p := range td.Partitions.Sorted() {
				if len(p.ISR) < len(p.Replicas) {
					want = append(want, fmt.Sprintf("%s/%d isr %v", td.Topic, p.Partition, p.ISR))
				}
			}
		}
		got := eval[[]string](t, ctx, `[...document.querySelectorAll("#under-replicated tr[data-p]")].map(r =>
			r.dataset.t + "/" + r.dataset.p + " isr [" + r.children[4].textContent.split(", ").join(" ") + "]")`)
		if len(want) != 10 {
			return fmt.Errorf("Metadata lists %d under-replicated partitions, want all 10", len(want))
		}
		if d := cmp.Diff(want, got); d != "" {
			return fmt.Errorf("under-replicated (-Metadata +page):\n%s", d)
		}
		return nil
	})
	screenshot(t, ctx, "cluster-node-down")
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.ReplaceAll(s, ",", ""))
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}

// TestBrowserTopic opens a topic's page: partitions, leaders, replicas,
// ISR and offsets are Metadata's and ListOffsets'; the message browser
// finds the records of one key and shows a JSON value as JSON.
func TestBrowserTopic(t *testing.T) {
	ctx := browser(t)
	brokers := startBroker(t)
	base := startConsole(t, brokers)
	cl := testClient(t, brokers)
	adm := kadm.NewClient(cl)
	createTopic(t, adm, "orders", 4, 1)
	var wantKeyed []string
	for i := range 30 {
		key := "customer-" + strconv.Itoa(i%3)
		r := &kgo.Record{Topic: "orders", Partition: int32(i % 4), Key: []byte(key), Value: []byte(fmt.Sprintf(`{"order":%d,"amount":%d}`, i, i*10))}
		if err := cl.ProduceSync(testCtx(t), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if key == "customer-1" {
			wantKeyed = append(wantKeyed, fmt.Sprintf("%d@%d", r.Partition, r.Offset))
		}
	}
	slices.SortFunc(wantKeyed, func(a, b string) int {
		var pa, oa, pb, ob int
		fmt.Sscanf(a, "%d@%d", &pa, &oa)
		fmt.Sscanf(b, "%d@%d", &pb, &ob)
		if pa != pb {
			return pa - pb
		}
		return oa - ob
	})
	createTopic(t, adm, "payments", 1, 1)
	open(t, ctx, base, "topics")
	if got := eval[[]string](t, ctx, `[...document.querySelectorAll("#topics tr[data-topic]")].map(r => r.dataset.topic)`); !slices.Equal(got, []string{"orders", "payments"}) {
		t.Errorf("topics listed: %v", got)
	}
	eval[bool](t, ctx, `(() => { const f = document.querySelector("#filter"); f.value = "PAY"; f.dispatchEvent(new Event("input")); return true })()`)
	if got := eval[[]string](t, ctx, `[...document.querySelectorAll("#topics tr[data-topic]")].map(r => r.dataset.topic)`); !slices.Equal(got, []string{"payments"}) {
		t.Errorf("topics listed with the filter PAY: %v", got)
	}

	took := open(t, ctx, base, "topic/orders")
	t.Logf("topic page drawn in %v", took)

	type row struct {
		P        int32  `json:"p"`
		Leader   string `json:"leader"`
		Replicas string `json:"replicas"`
		ISR      string `json:"isr"`
		Start    string `json:"start"`
		End      string `json:"end"`
	}
	got := eval[[]row](t, ctx, `[...document.querySelectorAll("#partitions tr[data-p]")].map(r => {
		const k = n => r.querySelector("[data-k=" + n + "]").textContent;
		return {p: +r.dataset.p, leader: k("leader"), replicas: k("replicas"), isr: k("isr"), start: k("start"), end: k("end")};
	})`)
	md, err := adm.Metadata(testCtx(t), "orders")
	if err != nil {
		t.Fatal(err)
	}
	starts, _ := adm.ListStartOffsets(testCtx(t), "orders")
	ends, _ := adm.ListEndOffsets(testCtx(t), "orders")
	join := func(v []int32) string {
		var s []string
		for _, x := range v {
			s = append(s, strconv.Itoa(int(x)))
		}
		return strings.Join(s, ", ")
	}
	var want []row
	for _, p := range md.Topics["orders"].Partitions.Sorted() {
		s, _ := starts.Lookup("orders", p.Partition)
		e, _ := ends.Lookup("orders", p.Partition)
		want = append(want, row{P: p.Partition, Leader: strconv.Itoa(int(p.Leader)), Replicas: join(p.Replicas), ISR: join(p.ISR),
			Start: strconv.FormatInt(s.Offset, 10), End: strconv.FormatInt(e.Offset, 10)})
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("partitions shown (-Metadata and ListOffsets +page):\n%s", d)
	}

	// The records of one key, four a page, paged with "Read on".
	eval[bool](t, ctx, `(() => { const f = document.querySelector("#browse"); f.key.value = "customer-1"; f.limit.value = "4"; f.querySelector("button").click(); return true })()`)
	type msg struct {
		ID     string `json:"id"`
		Format string `json:"format"`
		Key    string `json:"key"`
		Value  string `json:"value"`
	}
	var ids []string
	for page := 1; ; page++ {
		waitFor(t, ctx, "the messages read", `!!document.querySelector("#message-list")`)
		msgs := eval[[]msg](t, ctx, `[...document.querySelectorAll("#message-list tr[data-p]")].map(r => ({
			id: r.dataset.p + "@" + r.dataset.o, format: r.querySelector("[data-k=value]").dataset.format,
			key: r.querySelector("[data-k=key] pre").textContent, value: r.querySelector("[data-k=value] pre").textContent}))`)
		if len(msgs) > 4 {
			t.Errorf("page %d: %d messages, limit 4", page, len(msgs))
		}
		for _, m := range msgs {
			ids = append(ids, m.ID)
			if m.Key != "customer-1" || m.Format != "json" || !strings.Contains(m.Value, `"amount":`) {
				t.Errorf("message %+v: want key customer-1 and a JSON value", m)
			}
		}
		if page == 1 {
			screenshot(t, ctx, "topic")
		}
		if !eval[bool](t, ctx, `!!document.querySelector("#read-on")`) || page > 10 {
			break
		}
		eval[bool](t, ctx, `(() => { document.querySelector("#message-list").remove(); document.querySelector("#read-on").click(); return true })()`)
	}
	slices.SortFunc(ids, func(a, b string) int {
		var pa, oa, pb, ob int
		fmt.Sscanf(a, "%d@%d", &pa, &oa)
		fmt.Sscanf(b, "%d@%d", &pb, &ob)
		if pa != pb {
			return pa - pb
		}
		return oa - ob
	})
	if d := cmp.Diff(wantKeyed, ids); d != "" {
		t.Errorf("records of customer-1 over the pages (-produced +shown):\n%s", d)
	}
}

// TestBrowserGroup opens a consumer group's page: the lag per partition and
// in total is kadm's Lag; a dry-run reset shows the plan and commits
// nothing; Apply commits it.
func TestBrowserGroup(t *testing.T) {
	ctx := browser(t)
	brokers := startBroker(t)
	base := startConsole(t, brokers)
	cl := testClient(t, brokers)
	adm := kadm.NewClient(cl)
	createTopic(t, adm, "orders", 3, 1)
	for i := range 30 {
		if err := cl.ProduceSync(testCtx(t), &kgo.Record{Topic: "orders", Partition: int32(i % 3), Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var commit kadm.Offsets
	for p, at := range []int64{1, 4, 10} {
		commit.Add(kadm.Offset{Topic: "orders", Partition: int32(p), At: at, LeaderEpoch: -1})
	}
	if err := adm.CommitAllOffsets(testCtx(t), "billing", commit); err != nil {
		t.Fatal(err)
	}
	open(t, ctx, base, "group/billing")
	shown := func() map[string]string {
		return eval[map[string]string](t, ctx, `Object.fromEntries([...document.querySelectorAll("#lag tr[data-p]")].map(r =>
			[r.dataset.t + "/" + r.dataset.p, r.querySelector("[data-k=lag]").textContent]).concat([["total", document.querySelector("#total-lag").textContent]]))`)
	}
	truth := func() map[string]string {
		lags, err := adm.Lag(testCtx(t), "billing")
		if err != nil {
			t.Fatal(err)
		}
		l := lags["billing"]
		out := map[string]string{"total": strconv.FormatInt(totalLag(l.Lag), 10)}
		for _, p := range l.Lag.Sorted() {
			out[p.Topic+"/"+strconv.Itoa(int(p.Partition))] = strconv.FormatInt(p.Lag, 10)
		}
		return out
	}
	if d := cmp.Diff(map[string]string{"total": "15", "orders/0": "9", "orders/1": "6", "orders/2": "0"}, truth()); d != "" {
		t.Fatalf("kadm's lag is not what the test set up:\n%s", d)
	}
	if d := cmp.Diff(truth(), shown()); d != "" {
		t.Errorf("lag shown (-kadm +page):\n%s", d)
	}

	eval[bool](t, ctx, `(() => { const f = document.querySelector("#reset"); f.topic.value = "orders"; f.to.value = "earliest"; f.querySelector("button[name=dry]").click(); return true })()`)
	waitFor(t, ctx, "the dry run's plan", `!!document.querySelector("#reset-plan")`)
	plan := eval[[]string](t, ctx, `[...document.querySelectorAll("#reset-plan tr[data-p]")].map(r => r.dataset.p + ":" + r.querySelector("[data-k=current]").textContent + "->" + r.querySelector("[data-k=new]").textContent)`)
	if d := cmp.Diff([]string{"0:1->0", "1:4->0", "2:10->0"}, plan); d != "" {
		t.Errorf("dry-run plan (-want +shown):\n%s", d)
	}
	if s := eval[string](t, ctx, `document.querySelector("#reset-state").textContent`); !strings.Contains(s, "Dry run") {
		t.Errorf("dry run says %q", s)
	}
	if d := cmp.Diff(map[string]string{"total": "15", "orders/0": "9", "orders/1": "6", "orders/2": "0"}, truth()); d != "" {
		t.Errorf("the dry run committed (-want +kadm):\n%s", d)
	}
	screenshot(t, ctx, "group-dry-run")

	eval[bool](t, ctx, `(() => { window.confirm = () => true; document.querySelector("#reset-apply").click(); return true })()`)
	waitFor(t, ctx, "the reset committed", `(document.querySelector("#reset-state") || {}).textContent === "Committed these offsets."`)
	if d := cmp.Diff(map[string]string{"total": "30", "orders/0": "10", "orders/1": "10", "orders/2": "10"}, truth()); d != "" {
		t.Errorf("after Apply (-want +kadm):\n%s", d)
	}
	waitFor(t, ctx, "the page's lag updated", `document.querySelector("#total-lag").textContent === "30"`)
	if d := cmp.Diff(truth(), shown()); d != "" {
		t.Errorf("lag shown after the reset (-kadm +page):\n%s", d)
	}
	screenshot(t, ctx, "group")
}

// TestBrowserApps opens the stream applications page with two instances
// of an application (one standby replica per task) and one instance that
// is down: the graph's nodes and edges are the topology's
// (Topology.Nodes, which Describe renders), each instance's active tasks
// are its Tasks(), its standby tasks the other's, the down one says so.
func TestBrowserApps(t *testing.T) {
	ctx := browser(t)
	brokers := startBroker(t)
	ras := startApps(t, brokers, 4, 2)
	base := startConsole(t, brokers, ras[0].url, "http://"+freeAddr(t), ras[1].url)
	open(t, ctx, base, "apps")
	type graph struct {
		Nodes    []string `json:"nodes"`
		Edges    []string `json:"edges"`
		Stores   []string `json:"stores"`
		Tasks    []string `json:"tasks"`
		Assigned []string `json:"assigned"`
		Down     string   `json:"down"`
	}
	var want graph
	for _, n := range ras[0].topo.Nodes() {
		want.Nodes = append(want.Nodes, n.Kind.String()+":"+n.Name)
		for _, c := range n.Children {
			want.Edges = append(want.Edges, n.Name+"->"+c)
		}
		for _, s := range n.Stores {
			want.Stores = append(want.Stores, n.Name+"~"+s)
		}
	}
	// The page numbers the instances in --apps order (1, 2), the down one
	// apart.
	var assigned []string
	for i, ra := range ras {
		var parts []string
		for _, id := range ra.app.Tasks() {
			want.Tasks = append(want.Tasks, fmt.Sprintf("%s active on %d", id, i+1))
			want.Tasks = append(want.Tasks, fmt.Sprintf("%s-standby standby on %d", id, 2-i))
			parts = append(parts, fmt.Sprintf("orders/%d", id.Partition))
		}
		assigned = append(assigned, strings.Join(parts, ", "))
	}
	want.Assigned = assigned
	want.Down = "down"
	slices.Sort(want.Nodes)
	slices.Sort(want.Edges)
	slices.Sort(want.Stores)
	slices.Sort(want.Tasks)
	slices.Sort(want.Assigned)
	var got graph
	eventually(t, 30*time.Second, "the page shows the topology and every instance's tasks", func() error {
		got = eval[graph](t, ctx, `(() => {
			const app = document.querySelector("[data-app='console-test']");
			if (!app) return {};
			return {
				nodes: [...app.querySelectorAll("svg g.node")].map(g => g.dataset.kind + ":" + g.dataset.name).sort(),
				edges: [...app.querySelectorAll("svg path.edge")].map(p => p.dataset.from + "->" + p.dataset.to).sort(),
				stores: [...app.querySelectorAll("svg path.storeedge")].map(p => p.dataset.from + "~" + p.dataset.store).sort(),
				tasks: [...app.querySelectorAll("tr[data-task]")].map(r => r.dataset.task + " " + r.children[1].textContent + " on " + r.children[2].textContent).sort(),
				assigned: [...app.querySelectorAll("[data-k=instances] [data-k=assigned]")].map(td => td.textContent).sort(),
				down: document.querySelector("[data-down='1'] [data-k=state]").textContent,
			};
		})()`)
		if d := cmp.Diff(want, got); d != "" {
			return fmt.Errorf("applications page (-topology and instances +page):\n%s", d)
		}
		return nil
	})
	if text := eval[string](t, ctx, `document.querySelector("[data-app='console-test'] [data-k=describe]").textContent`); text != ras[0].topo.Describe() {
		t.Errorf("Describe shown:\n%s\nwant:\n%s", text, ras[0].topo.Describe())
	}
	// A key lookup shows the store's value: the customer's windows as the
	// typed query view of the instance running its task reads them.
	store := windowStore(t, ras[0].topo)
	waitFor(t, ctx, "the lookup form lists the store", fmt.Sprintf(`[...document.querySelectorAll("#lookup-store option")].some(o => o.textContent.includes(%q))`, store))
	// Only the stores the instances render (runtime.QueryStore) are offered.
	if opts := eval[[]string](t, ctx, `[...document.querySelectorAll("#lookup-store option")].map(o => o.textContent)`); len(opts) != 1 {
		t.Errorf("lookup offers %q, want the one queryable store %q", opts, store)
	}
	eventually(t, 30*time.Second, "a key lookup shows the store's windows", func() error {
		want, err := windowsOf(t, ras, "c3")
		if err != nil {
			return err
		}
		eval[bool](t, ctx, `(() => { document.querySelector("#lookup-key").value = "c3"; document.querySelector("#lookup button").click(); return true })()`)
		waitFor(t, ctx, "the lookup's answer", `!!document.querySelector("#lookup-result").dataset.status`)
		shown := eval[string](t, ctx, `(document.querySelector("#lookup-value") || {}).textContent || document.querySelector("#lookup-result").textContent`)
		var got []windowValue
		if err := json.Unmarshal([]byte(shown), &got); err != nil {
			return fmt.Errorf("lookup shows %q: %v", shown, err)
		}
		if d := cmp.Diff(want, got); d != "" || len(want) == 0 {
			return fmt.Errorf("lookup of c3 (-store +page):\n%s", d)
		}
		return nil
	})
	screenshot(t, ctx, "apps")
}

// TestBrowserThousandPartitions opens the topic page and the cluster page
// of a cluster with a 1,000-partition topic: each must be drawn, every
// partition listed, within renderBound of the navigation, as the browser
// measures it.
func TestBrowserThousandPartitions(t *testing.T) {
	ctx := browser(t)
	brokers := startBroker(t)
	base := startConsole(t, brokers)
	createTopic(t, kadm.NewClient(testClient(t, brokers)), "big", 1000, 1)
	// The first load warms up what is not the page's (the browser's
	// process for the origin, the console's connections).
	open(t, ctx, base, "topics")
	for _, route := range []string{"topic/big", "cluster", "topics"} {
		took := open(t, ctx, base, route)
		t.Logf("%s drawn in %v (bound %v)", route, took, renderBound)
		if took > renderBound {
			t.Errorf("%s: first draw took %v, bound %v", route, took, renderBound)
		}
	}
	open(t, ctx, base, "topic/big")
	if n := eval[int](t, ctx, `document.querySelectorAll("#partitions tr[data-p]").length`); n != 1000 {
		t.Errorf("%d partitions listed, want 1000", n)
	}
	screenshot(t, ctx, "topic-1000-partitions")
	var raw json.RawMessage = eval[json.RawMessage](t, ctx, `performance.getEntriesByType("navigation").map(e => ({domContentLoaded: e.domContentLoadedEventEnd, load: e.loadEventEnd}))`)
	t.Logf("navigation timing of the last load: %s", raw)
}
