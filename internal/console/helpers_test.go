package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/broker"
)

// startBroker starts a single in-process Weir broker for one test.
func startBroker(t testing.TB) []string {
	t.Helper()
	addrs, _ := startBrokerDir(t)
	return addrs
}

// startBrokerDir is startBroker that also returns the broker's data
// directory.
func startBrokerDir(t testing.TB) ([]string, string) {
	t.Helper()
	dir := t.TempDir()
	b, err := broker.Open(broker.Options{Listen: "127.0.0.1:0", DataDir: dir, GroupInitialRebalanceDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return []string{b.Addr()}, dir
}

// segmentBytes sums the sizes of the segment files (topics/TOPIC/P/*.log)
// of each partition of topic under a broker's data directory.
func segmentBytes(t testing.TB, dataDir, topic string) map[int32]int64 {
	t.Helper()
	out := map[int32]int64{}
	files, err := filepath.Glob(filepath.Join(dataDir, "topics", topic, "*", "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		p, err := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		if err != nil {
			continue
		}
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		out[int32(p)] += st.Size()
	}
	if len(files) == 0 {
		t.Fatalf("no segment files of %q under %s", topic, dataDir)
	}
	return out
}

// startClusterClosers starts n in-process Weir nodes, each a controller
// voter and a broker, and returns their client addresses and a function
// closing each node (the test's end closes them too; Close is idempotent).
func startClusterClosers(t testing.TB, n int) ([]string, []func()) {
	t.Helper()
	var voters []string
	for i := 1; i <= n; i++ {
		voters = append(voters, fmt.Sprintf("%d@%s", i, freeAddr(t)))
	}
	type opened struct {
		b   *broker.Broker
		err error
	}
	// NB: the nodes open together: each waits for a quorum of the others.
	ch := make([]chan opened, n)
	for i := range n {
		ch[i] = make(chan opened, 1)
		go func() {
			b, err := broker.Open(broker.Options{NodeID: int32(i + 1), ControllerVoters: strings.Join(voters, ","),
				Listen: "127.0.0.1:0", DataDir: t.TempDir(), GroupInitialRebalanceDelay: -1})
			ch[i] <- opened{b, err}
		}()
	}
	var addrs []string
	var closers []func()
	for i := range n {
		o := <-ch[i]
		if o.err != nil {
			t.Fatalf("node %d: %v", i+1, o.err)
		}
		addrs = append(addrs, o.b.Addr())
		closers = append(closers, func() { _ = o.b.Close() })
	}
	// NB: the nodes close together at the end: one by one, the last ones
	// would each wait for a quorum that is gone.
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, c := range closers {
			wg.Go(c)
		}
		wg.Wait()
	})
	return addrs, closers
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startConsole serves a console for brokers (and apps) on a loopback port.
func startConsole(t testing.TB, brokers []string, apps ...string) string {
	t.Helper()
	s, err := New(Options{Brokers: brokers, Apps: apps, RequestTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() { hs.Close(); s.Close() })
	return hs.URL
}

func testClient(t testing.TB, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func createTopic(t testing.TB, adm *kadm.Client, topic string, partitions int32, rf int16) {
	t.Helper()
	resp, err := adm.CreateTopic(testCtx(t), partitions, rf, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
}

// call does an API request and decodes its JSON answer into a T; the
// answer's status must be want.
func call[T any](t testing.TB, method, url string, body any, want int) T {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, url, resp.StatusCode, want, data)
	}
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s %s: %v: %s", method, url, err, data)
	}
	return v
}

func get[T any](t testing.TB, url string) T {
	t.Helper()
	return call[T](t, http.MethodGet, url, nil, http.StatusOK)
}

// eventually polls f until it returns nil or d passes.
func eventually(t testing.TB, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not after %v: %v", what, d, err)
		}
		time.Sleep(50 * time.Millisecond) // polling interval with a deadline
	}
}

func httptestServer(t testing.TB, h http.Handler) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}
