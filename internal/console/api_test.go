package console

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/weir-dev/weir/broker"
)

// TestAPICluster checks /api/cluster on a 3-node cluster against the
// cluster's own answers: every node a voter and a broker at its address,
// the controller DescribeCluster names, each node's leader count from
// Metadata, no unhealthy partition, and every node's log directory with
// the bytes of the partitions it holds (DescribeLogDirs).
//
// Then node 3 stops: the partitions it replicated are listed
// under-replicated, as Metadata shows them, and node 3 is shown not live.
func TestAPICluster(t *testing.T) {
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
	var c Cluster
	eventually(t, 30*time.Second, "every partition in sync and the quorum described", func() error {
		c = get[Cluster](t, base+"/api/cluster")
		if len(c.Nodes) != 3 {
			return fmt.Errorf("%d nodes: %+v", len(c.Nodes), c.Nodes)
		}
		for _, n := range c.Nodes {
			if !n.Voter || n.Broker == "" || n.Err != "" || n.Leader < 1 {
				return fmt.Errorf("node %+v", n)
			}
		}
		if len(c.UnderReplicated)+len(c.Offline) > 0 || c.Partitions < 6 {
			return fmt.Errorf("%d partitions, under-replicated %v, offline %v", c.Partitions, c.UnderReplicated, c.Offline)
		}
		return nil
	})
	md, err := adm.Metadata(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	leaders := map[int32]int{}
	parts := 0
	for _, td := range md.Topics {
		for _, p := range td.Partitions {
			leaders[p.Leader]++
			parts++
		}
	}
	if c.Controller != md.Controller {
		t.Errorf("controller %d, Metadata says %d", c.Controller, md.Controller)
	}
	if c.Partitions != parts {
		t.Errorf("%d partitions, Metadata has %d", c.Partitions, parts)
	}
	for _, n := range c.Nodes {
		i := slices.IndexFunc(md.Brokers, func(b kadm.BrokerDetail) bool { return b.NodeID == n.ID })
		if i < 0 {
			t.Errorf("node %d not in Metadata's brokers", n.ID)
			continue
		}
		b := md.Brokers[i]
		if n.Broker != b.Host+":"+strconv.Itoa(int(b.Port)) {
			t.Errorf("node %d at %q, Metadata: %+v", n.ID, n.Broker, b)
		}
		if n.Leaders != leaders[n.ID] {
			t.Errorf("node %d leads %d, Metadata says %d", n.ID, n.Leaders, leaders[n.ID])
		}
	}
	// Every node holds a replica of each of the 6 partitions.
	if !c.Disk.Available || len(c.Disk.Dirs) != 3 {
		t.Errorf("disk %+v: want a log directory on each of the 3 nodes", c.Disk)
	}
	for _, d := range c.Disk.Dirs {
		if d.Dir == "" || d.Error != "" || d.TotalBytes <= 0 || d.UsableBytes > d.TotalBytes || d.Bytes < 0 {
			t.Errorf("log directory %+v", d)
		}
	}

	closers[2]()
	eventually(t, 30*time.Second, "node 3's partitions under-replicated as Metadata says", func() error {
		md, err := adm.Metadata(testCtx(t), "orders")
		if err != nil {
			return err
		}
		var want []PartitionRef
		for _, p := range md.Topics["orders"].Partitions.Sorted() {
			if len(p.ISR) < len(p.Replicas) {
				want = append(want, PartitionRef{Topic: "orders", Partition: p.Partition, Leader: p.Leader, Replicas: p.Replicas, ISR: p.ISR})
			}
		}
		if len(want) != 6 {
			return fmt.Errorf("Metadata: %d partitions under-replicated, want all 6", len(want))
		}
		c := get[Cluster](t, base+"/api/cluster")
		if d := cmp.Diff(want, c.UnderReplicated); d != "" {
			return fmt.Errorf("under-replicated (-Metadata +console):\n%s", d)
		}
		if n := c.Nodes[2]; n.ID != 3 || !(n.Fenced || n.Broker == "") {
			return fmt.Errorf("node 3 shown as %+v, want fenced or not a live broker", n)
		}
		return nil
	})
}

// TestAPITopic checks /api/topics and /api/topics/{topic} against
// Metadata, ListStartOffsets/ListEndOffsets and DescribeTopicConfigs.
func TestAPITopic(t *testing.T) {
	brokers, dataDir := startBrokerDir(t)
	base := startConsole(t, brokers)
	cl := testClient(t, brokers)
	adm := kadm.NewClient(cl)
	createTopic(t, adm, "orders", 3, 1)
	if _, err := adm.AlterTopicConfigs(testCtx(t), []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr("3600000")}}, "orders"); err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		r := &kgo.Record{Topic: "orders", Partition: int32(i % 2), Value: []byte("v")}
		if err := cl.ProduceSync(testCtx(t), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := adm.DeleteRecords(testCtx(t), kadm.Offsets{"orders": {0: {Topic: "orders", Partition: 0, At: 1}}}); err != nil {
		t.Fatal(err)
	}
	got := get[Topic](t, base+"/api/topics/orders")
	md, err := adm.Metadata(testCtx(t), "orders")
	if err != nil {
		t.Fatal(err)
	}
	starts, _ := adm.ListStartOffsets(testCtx(t), "orders")
	ends, _ := adm.ListEndOffsets(testCtx(t), "orders")
	// Sizes are the bytes of each partition's segment files.
	sizes := segmentBytes(t, dataDir, "orders")
	var want []Partition
	for _, p := range md.Topics["orders"].Partitions.Sorted() {
		s, _ := starts.Lookup("orders", p.Partition)
		e, _ := ends.Lookup("orders", p.Partition)
		want = append(want, Partition{Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, Replicas: orEmpty(p.Replicas),
			ISR: orEmpty(p.ISR), Offline: orEmpty(p.OfflineReplicas), Start: s.Offset, End: e.Offset, Bytes: sizes[p.Partition]})
	}
	if d := cmp.Diff(want, got.Partitions); d != "" {
		t.Errorf("partitions (-Metadata and ListOffsets +console):\n%s", d)
	}
	if !got.SizesAvailable || got.Partitions[0].Bytes == 0 || got.Partitions[2].Bytes != 0 {
		t.Errorf("sizes: available %v, partitions %+v: want partitions 0 and 1 non-empty, 2 empty", got.SizesAvailable, got.Partitions)
	}
	if got.Partitions[0].Start != 1 || got.Partitions[0].End != 4 || got.Partitions[1].End != 3 {
		t.Errorf("offsets %+v: want partition 0 at 1..4 (one record deleted), partition 1 at 0..3", got.Partitions)
	}
	i := slices.IndexFunc(got.Configs, func(c Config) bool { return c.Name == "retention.ms" })
	if i < 0 || got.Configs[i].Value != "3600000" || got.Configs[i].Source != "DYNAMIC_TOPIC_CONFIG" {
		t.Errorf("retention.ms: %+v", got.Configs)
	}
	list := get[[]TopicSummary](t, base+"/api/topics")
	if d := cmp.Diff([]TopicSummary{{Topic: "orders", Partitions: 3, ReplicationFactor: 1, Records: 6}}, list); d != "" {
		t.Errorf("/api/topics (-want +got):\n%s", d)
	}
	e := call[map[string]string](t, http.MethodGet, base+"/api/topics/nope", nil, http.StatusNotFound)
	if !strings.Contains(e["error"], `"nope" does not exist`) {
		t.Errorf("unknown topic: %v", e)
	}
}

// TestAPIMessages reads records back through the message browser: from
// an offset, from a time, filtered by key, bounded by limit, with values
// rendered as JSON, msgpack, text or hex; bad parameters are refused
// naming the parameter.
func TestAPIMessages(t *testing.T) {
	brokers := startBroker(t)
	base := startConsole(t, brokers)
	cl := testClient(t, brokers)
	adm := kadm.NewClient(cl)
	createTopic(t, adm, "events", 2, 1)
	mp, err := msgpack.Marshal(map[string]any{"id": 7, "name": "ada"})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	values := [][]byte{[]byte(`{"n":1}`), mp, []byte("plain text"), {0x00, 0xff, 0x10}}
	for i, v := range values {
		r := &kgo.Record{Topic: "events", Partition: 0, Key: []byte("key-" + strconv.Itoa(i)), Value: v, Timestamp: t0.Add(time.Duration(i) * time.Minute)}
		if err := cl.ProduceSync(testCtx(t), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.ProduceSync(testCtx(t), &kgo.Record{Topic: "events", Partition: 1, Key: []byte("key-1"), Value: nil}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	q := func(params string) Messages { return get[Messages](t, base+"/api/topics/events/messages?"+params) }

	all := q("")
	var formats []string
	for _, m := range all.Messages {
		formats = append(formats, fmt.Sprintf("%d@%d %s %s", m.Partition, m.Offset, m.Key.Text, m.Value.Format))
	}
	want := []string{"0@0 key-0 json", "0@1 key-1 msgpack", "0@2 key-2 text", "0@3 key-3 hex", "1@0 key-1 auto"}
	if d := cmp.Diff(want, formats); d != "" {
		t.Errorf("all records (-want +got):\n%s", d)
	}
	if v := all.Messages[1].Value.Text; !strings.Contains(v, `"name": "ada"`) || !strings.Contains(v, `"id": 7`) {
		t.Errorf("msgpack rendered as %q", v)
	}
	if v := all.Messages[3].Value.Text; v != hex.EncodeToString(values[3]) {
		t.Errorf("binary rendered as %q", v)
	}
	if !all.Messages[4].Value.Null || all.Truncated || all.Scanned != 5 || all.Next[0] != 4 || all.Next[1] != 1 {
		t.Errorf("tombstone %+v, truncated %v, scanned %d, next %v", all.Messages[4].Value, all.Truncated, all.Scanned, all.Next)
	}

	offsets := func(ms Messages) (out []string) {
		for _, m := range ms.Messages {
			out = append(out, fmt.Sprintf("%d@%d", m.Partition, m.Offset))
		}
		return out
	}
	for _, c := range []struct{ params, want string }{
		{"partition=0&offset=2", "0@2 0@3"},
		{"partition=0&offset=99", ""},
		{"key=key-1", "0@1 1@0"},
		{"partition=0&limit=2", "0@0 0@1"},
		{"partition=0&time=" + url.QueryEscape(t0.Add(90*time.Second).Format(time.RFC3339Nano)), "0@2 0@3"},
		{"partition=0&time=" + strconv.FormatInt(t0.Add(2*time.Minute).UnixMilli(), 10), "0@2 0@3"},
	} {
		got := strings.Join(offsets(q(c.params)), " ")
		if got != c.want {
			t.Errorf("%s: %q, want %q", c.params, got, c.want)
		}
	}
	// Paging through every record of key-1 and key-2 two at a time with
	// resume finds each once.
	var paged []string
	params := "key=key-&limit=2"
	for range 10 {
		page := q(params)
		paged = append(paged, offsets(page)...)
		if !page.Truncated {
			break
		}
		var resume []string
		for p, o := range page.Next {
			resume = append(resume, fmt.Sprintf("%d:%d", p, o))
		}
		params = "key=key-&limit=2&resume=" + strings.Join(resume, ",")
	}
	if d := cmp.Diff([]string{"0@0", "0@1", "0@2", "0@3", "1@0"}, paged); d != "" {
		t.Errorf("paged with resume (-want +got):\n%s", d)
	}
	if got := strings.Join(offsets(q("resume=0:3,1:0")), " "); got != "0@3 1@0" {
		t.Errorf("resume=0:3,1:0: %q", got)
	}
	limited := q("partition=0&limit=2")
	if !limited.Truncated || limited.Next[0] != 2 {
		t.Errorf("limit 2: truncated %v, next %v; want truncated, next 2", limited.Truncated, limited.Next)
	}
	if m := q("partition=0&format=hex&limit=1").Messages[0]; m.Value.Format != "hex" || m.Value.Text != hex.EncodeToString(values[0]) {
		t.Errorf("format=hex: %+v", m.Value)
	}
	if m := q("partition=0&offset=2&format=json&limit=1").Messages[0]; m.Value.Format != "hex" {
		t.Errorf("format=json on text: %+v, want the hex fallback", m.Value)
	}
	for params, want := range map[string]string{
		"partition=x":        `partition "x"`,
		"offset=-1":          `offset "-1"`,
		"limit=100000":       `limit "100000"`,
		"format=yaml":        `format "yaml"`,
		"time=yesterday":     `time "yesterday"`,
		"offset=1&time=1000": "not both",
		"partition=9":        "no partition 9",
	} {
		status := http.StatusBadRequest
		if strings.HasPrefix(params, "partition=9") {
			status = http.StatusNotFound
		}
		e := call[map[string]string](t, http.MethodGet, base+"/api/topics/events/messages?"+params, nil, status)
		if !strings.Contains(e["error"], want) {
			t.Errorf("%s: error %q, want it to name %q", params, e["error"], want)
		}
	}
}

// TestAPIGroupLagAndReset checks a group's lag against kadm's Lag, and
// the offset reset: a dry run changes nothing, an execute commits the
// plan, a group with members is refused.
func TestAPIGroupLagAndReset(t *testing.T) {
	brokers := startBroker(t)
	base := startConsole(t, brokers)
	cl := testClient(t, brokers)
	adm := kadm.NewClient(cl)
	createTopic(t, adm, "orders", 2, 1)
	for i := range 10 {
		if err := cl.ProduceSync(testCtx(t), &kgo.Record{Topic: "orders", Partition: int32(i % 2), Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var commit kadm.Offsets
	commit.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 2, LeaderEpoch: -1})
	commit.Add(kadm.Offset{Topic: "orders", Partition: 1, At: 5, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(testCtx(t), "billing", commit); err != nil {
		t.Fatal(err)
	}
	lagOf := func() map[string]int64 {
		g := get[Group](t, base+"/api/groups/billing")
		out := map[string]int64{"total": g.TotalLag}
		for _, p := range g.Partitions {
			out[p.Topic+"/"+strconv.Itoa(int(p.Partition))] = p.Lag
		}
		return out
	}
	kadmLag := func() map[string]int64 {
		lags, err := adm.Lag(testCtx(t), "billing")
		if err != nil {
			t.Fatal(err)
		}
		l := lags["billing"]
		out := map[string]int64{"total": totalLag(l.Lag)}
		for _, p := range l.Lag.Sorted() {
			out[p.Topic+"/"+strconv.Itoa(int(p.Partition))] = p.Lag
		}
		return out
	}
	if d := cmp.Diff(map[string]int64{"total": 3, "orders/0": 3, "orders/1": 0}, kadmLag()); d != "" {
		t.Fatalf("kadm's lag is not what the test set up (-want +got):\n%s", d)
	}
	if d := cmp.Diff(kadmLag(), lagOf()); d != "" {
		t.Errorf("lag (-kadm +console):\n%s", d)
	}
	if gs := get[[]GroupSummary](t, base+"/api/groups"); len(gs) != 1 || gs[0].Group != "billing" || gs[0].TotalLag != 3 {
		t.Errorf("/api/groups: %+v", gs)
	}

	dry := call[ResetPlan](t, http.MethodPost, base+"/api/groups/billing/reset", ResetRequest{Topic: "orders", To: "earliest"}, http.StatusOK)
	wantPlan := []ResetOffset{{Topic: "orders", Partition: 0, Current: 2, New: 0}, {Topic: "orders", Partition: 1, Current: 5, New: 0}}
	if d := cmp.Diff(wantPlan, dry.Offsets); d != "" || dry.Executed {
		t.Errorf("dry run (executed %v; -want +got):\n%s", dry.Executed, d)
	}
	if d := cmp.Diff(map[string]int64{"total": 3, "orders/0": 3, "orders/1": 0}, lagOf()); d != "" {
		t.Errorf("a dry run changed the offsets (-want +got):\n%s", d)
	}
	done := call[ResetPlan](t, http.MethodPost, base+"/api/groups/billing/reset", ResetRequest{Topic: "orders", To: "offset", Offset: 4, Execute: true}, http.StatusOK)
	if !done.Executed || done.Offsets[0].New != 4 || done.Offsets[1].New != 4 {
		t.Errorf("execute: %+v", done)
	}
	if d := cmp.Diff(map[string]int64{"total": 2, "orders/0": 1, "orders/1": 1}, lagOf()); d != "" {
		t.Errorf("after the reset (-want +got):\n%s", d)
	}

	for body, want := range map[string]ResetRequest{
		"topic is required": {To: "earliest"},
		`to "sideways"`:     {Topic: "orders", To: "sideways"},
		`time "soon"`:       {Topic: "orders", To: "time", Time: "soon"},
	} {
		e := call[map[string]string](t, http.MethodPost, base+"/api/groups/billing/reset", want, http.StatusBadRequest)
		if !strings.Contains(e["error"], body) {
			t.Errorf("%+v: error %q, want %q", want, e["error"], body)
		}
	}

	// Only the console's own page may reset: a cross-site form (not JSON)
	// or another origin is refused, and nothing is committed.
	for _, c := range []struct {
		contentType, origin string
		status              int
	}{
		{"text/plain", "", http.StatusUnsupportedMediaType},
		{"application/x-www-form-urlencoded", "", http.StatusUnsupportedMediaType},
		{"application/json", "http://evil.example", http.StatusForbidden},
	} {
		req, _ := http.NewRequest(http.MethodPost, base+"/api/groups/billing/reset", strings.NewReader(`{"topic":"orders","to":"earliest","execute":true}`))
		req.Header.Set("Content-Type", c.contentType)
		if c.origin != "" {
			req.Header.Set("Origin", c.origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("reset with %s from %q: %s, want %d", c.contentType, c.origin, resp.Status, c.status)
		}
	}
	if d := cmp.Diff(map[string]int64{"total": 2, "orders/0": 1, "orders/1": 1}, lagOf()); d != "" {
		t.Errorf("a refused reset changed the offsets (-want +got):\n%s", d)
	}

	member := testClient(t, brokers, kgo.ConsumerGroup("billing"), kgo.ConsumeTopics("orders"))
	eventually(t, 20*time.Second, "the member joined", func() error {
		member.PollRecords(testCtx(t), 1)
		if g := get[Group](t, base+"/api/groups/billing"); len(g.Members) != 1 || len(g.Members[0].Assigned) != 2 {
			return fmt.Errorf("members %+v", g.Members)
		}
		return nil
	})
	e := call[map[string]string](t, http.MethodPost, base+"/api/groups/billing/reset", ResetRequest{Topic: "orders", To: "latest", Execute: true}, http.StatusConflict)
	if !strings.Contains(e["error"], "1 active members") {
		t.Errorf("reset with a member: %v", e)
	}
}

// TestAPIApps shows an application that answers and one that does not.
func TestAPIApps(t *testing.T) {
	brokers := startBroker(t)
	app := http.NewServeMux()
	app.HandleFunc("/application", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"application":"billing"}`))
	})
	up := httptestServer(t, app)
	down := "http://" + freeAddr(t)
	base := startConsole(t, brokers, up, down, up+"/nothing-here")
	got := get[[]App](t, base+"/api/apps")
	if len(got) != 3 || !got[0].Up || string(got[0].Application) != `{"application":"billing"}` {
		t.Fatalf("up app: %+v", got)
	}
	if got[1].Up || !strings.Contains(got[1].Error, "down") {
		t.Errorf("down app: %+v", got[1])
	}
	if got[2].Up || !strings.Contains(got[2].Error, "404") {
		t.Errorf("app without /application: %+v", got[2])
	}
}

func TestRender(t *testing.T) {
	big := Render([]byte(strings.Repeat("é", 20000)), FormatAuto)
	if big.Format != FormatText || !big.Truncated || len(big.Text) > maxRendered || !utf8.ValidString(big.Text) || big.Bytes != 40000 {
		t.Errorf("a 40,000-byte text: format %s, truncated %v, %d bytes shown (valid UTF-8 %v), want at most %d", big.Format, big.Truncated, len(big.Text), utf8.ValidString(big.Text), maxRendered)
	}
	if h := Render(make([]byte, 100000), FormatHex); !h.Truncated || len(h.Text) != maxRendered {
		t.Errorf("100,000 bytes as hex: truncated %v, %d characters, want %d", h.Truncated, len(h.Text), maxRendered)
	}
	for _, c := range []struct {
		in           []byte
		format, want string
		text         string
	}{
		{[]byte(`[1,2]`), FormatAuto, FormatJSON, "[\n  1,\n  2\n]"},
		{[]byte("héllo\nworld"), FormatAuto, FormatText, "héllo\nworld"},
		{[]byte("a\x01b"), FormatText, FormatHex, "610162"},
		{[]byte{0x93, 0x01, 0x02, 0x03}, FormatAuto, FormatMsgpack, "[\n  1,\n  2,\n  3\n]"},
		{[]byte{0x93, 0x01}, FormatMsgpack, FormatHex, "9301"},
		{[]byte{}, FormatAuto, FormatText, ""},
	} {
		r := Render(c.in, c.format)
		if r.Format != c.want || r.Text != c.text || r.Bytes != len(c.in) {
			t.Errorf("Render(%q, %s) = %+v, want %s %q", c.in, c.format, r, c.want, c.text)
		}
	}
}

// TestAPIBrokerDown: with its broker gone, every call answers a JSON error
// within the request timeout instead of hanging, and the UI is still
// served.
func TestAPIBrokerDown(t *testing.T) {
	b, err := broker.Open(broker.Options{Listen: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Brokers: []string{b.Addr()}, RequestTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := httptestServer(t, s.Handler())
	get[[]TopicSummary](t, base+"/api/topics")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/cluster", "/api/topics", "/api/topics/x", "/api/groups"} {
		start := time.Now()
		e := call[map[string]string](t, http.MethodGet, base+path, nil, http.StatusBadGateway)
		if took := time.Since(start); took > 4*time.Second || e["error"] == "" {
			t.Errorf("%s: %v after %v; want a JSON error within the 1 s timeout", path, e, took)
		}
	}
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("UI: %s", resp.Status)
	}
}

// TestAPIMessagesEndWithoutRecords reads a range that ends with a
// transaction marker (on kfake: Weir's broker refuses transactions): the
// read shows every record and ends after idleWait, saying why, instead of
// waiting out the request timeout for a record that is not there.
func TestAPIMessagesEndWithoutRecords(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "tx"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	base := startConsole(t, brokers)
	cl := testClient(t, brokers, kgo.TransactionalID("console-test"), kgo.DefaultProduceTopic("tx"))
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.EndTransaction(testCtx(t), kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	m := get[Messages](t, base+"/api/topics/tx/messages")
	took := time.Since(start)
	if len(m.Messages) != 3 || !m.Idle || m.Next[0] != 3 {
		t.Errorf("messages %d, idle %v, next %v; want 3 records, idle, next 3 (the end, 4, is the marker's)", len(m.Messages), m.Idle, m.Next)
	}
	if took > idleWait+2*time.Second {
		t.Errorf("the read took %v, want about idleWait (%v)", took, idleWait)
	}
}
