package stateengine_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"
	"github.com/weir-dev/weir/internal/stateengine"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/state/statetest"
)

// logBuffer collects log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func openEngineLog(t *testing.T, fs vfs.FS, lb *logBuffer) *stateengine.Engine {
	t.Helper()
	logger := quietLogger()
	if lb != nil {
		logger = slog.New(slog.NewTextHandler(lb, nil))
	}
	e, err := stateengine.Open(stateengine.Options{Dir: "/state", FS: fs, MemoryBudget: stateengine.MinMemoryBudget, Logger: logger})
	if err != nil {
		t.Fatalf("open engine: %v", err)
	}
	return e
}

func openKV(t *testing.T, e *stateengine.Engine, cl *statetest.Changelog, inMemory bool) state.KeyValueStore {
	t.Helper()
	s, err := e.OpenKeyValue(context.Background(), state.Spec{Name: "kv", InMemory: inMemory}, 0, cl)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return s
}

// countingReader counts the records a restore reads.
type countingReader struct {
	*statetest.Changelog
	from  state.Offset
	count int
}

func (c *countingReader) Read(ctx context.Context, from, to state.Offset, fn func([]state.ChangelogRecord) error) error {
	c.from = from
	return c.Changelog.Read(ctx, from, to, func(b []state.ChangelogRecord) error {
		c.count += len(b)
		return fn(b)
	})
}

func TestRestoreReplaysOnlyTheTail(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	cl := statetest.NewChangelog("app-kv-changelog", 3)
	e := openEngineLog(t, fs, nil)
	s := openKV(t, e, cl, false)
	for i := range 100 {
		put(t, s, fmt.Sprintf("k%03d", i), "v1")
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Another instance (or this one before a crash) wrote more to the
	// changelog that this store never committed.
	for i := range 10 {
		cl.AppendRaw([]byte(fmt.Sprintf("k%03d", i)), []byte("v2"))
	}
	cl.AppendRaw([]byte("k050"), nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e = openEngineLog(t, fs, nil)
	defer e.Close()
	s = openKV(t, e, cl, false)
	cr := &countingReader{Changelog: cl}
	res, err := stateengine.Restore(ctx, s, cr)
	if err != nil {
		t.Fatal(err)
	}
	if cr.from != 100 || cr.count != 11 || res.Records != 11 || res.From != 100 || res.To != 111 || res.Wiped {
		t.Fatalf("restore read from %d, %d records; result %+v; want the 11-record tail from 100", cr.from, cr.count, res)
	}
	if got := string(get(t, s, "k005")); got != "v2" {
		t.Fatalf("k005 = %q, want v2", got)
	}
	if got := get(t, s, "k050"); got != nil {
		t.Fatalf("k050 = %q, want deleted", got)
	}
	if got := string(get(t, s, "k099")); got != "v1" {
		t.Fatalf("k099 = %q", got)
	}
	// A second restore has nothing to do.
	cr2 := &countingReader{Changelog: cl}
	if res, err := stateengine.Restore(ctx, s, cr2); err != nil || res.Records != 0 || cr2.count != 0 {
		t.Fatalf("second restore: %+v %v (read %d)", res, err, cr2.count)
	}
}

func TestRestoreAfterUncleanStop(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewCrashableMem()
	cl := statetest.NewChangelog("app-kv-changelog", 0)
	e := openEngineLog(t, fs, nil)
	s := openKV(t, e, cl, false)
	want := map[string]string{}
	// committed holds every checkpoint the store reached: 0 when new, then
	// the changelog end after each flush (50, 100, ... 250).
	committed := map[state.Offset]bool{0: true}
	for round := range 5 {
		for i := range 50 {
			k, v := fmt.Sprintf("k%02d", (i*7+round)%60), fmt.Sprintf("r%d-%d", round, i)
			put(t, s, k, v)
			want[k] = v
		}
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		ck, err := stateengine.Checkpoint(s)
		if err != nil {
			t.Fatal(err)
		}
		if ck != state.Offset(50*(round+1)) {
			t.Fatalf("checkpoint after flush %d = %d, want %d", round, ck, 50*(round+1))
		}
		committed[ck] = true
	}
	// Writes appended to the changelog and acknowledged, but the process
	// dies before the store commits them.
	for i := range 20 {
		k, v := fmt.Sprintf("k%02d", i), "tail"
		put(t, s, k, v)
		want[k] = v
	}
	if _, err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Unclean stop: only what was synced survives (the store commits with
	// NoSync, so the last commits may be gone too).
	crashed := fs.CrashClone(vfs.CrashCloneCfg{})
	_ = e.Close()

	e2 := openEngineLog(t, crashed, nil)
	defer e2.Close()
	s2 := openKV(t, e2, cl, false)
	// The checkpoint that survived the crash is one the store committed
	// (which one depends on what the crash kept); the restore must start
	// there and replay exactly the 270-ckpt records after it, not the
	// whole changelog.
	ckpt, err := stateengine.Checkpoint(s2)
	if err != nil {
		t.Fatal(err)
	}
	if !committed[ckpt] {
		t.Fatalf("checkpoint after crash = %d, not one the store committed", ckpt)
	}
	end, err := cl.EndOffset(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if end != 270 {
		t.Fatalf("changelog end = %d, want 270 (5 flushes of 50 and a tail of 20)", end)
	}
	cr := &countingReader{Changelog: cl}
	res, err := stateengine.Restore(ctx, s2, cr)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("checkpoint after crash %d; restore %+v", ckpt, res)
	wantRes := stateengine.RestoreResult{From: ckpt, To: end, Records: int64(end - ckpt)}
	if d := cmp.Diff(wantRes, res); d != "" {
		t.Fatalf("restore result (-want +got):\n%s", d)
	}
	if cr.from != ckpt || cr.count != int(end-ckpt) {
		t.Fatalf("restore read %d records from %d; want %d from %d", cr.count, cr.from, end-ckpt, ckpt)
	}
	got := map[string]string{}
	for _, p := range drainKV(t)(s2.All(false)) {
		got[p.K] = p.V
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("after crash and restore (-want +got):\n%s", d)
	}
}

func TestRestoreWipesStoreAheadOfChangelog(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	var lb logBuffer
	cl := statetest.NewChangelog("app-kv-changelog", 1)
	e := openEngineLog(t, fs, &lb)
	s := openKV(t, e, cl, false)
	for i := range 20 {
		put(t, s, fmt.Sprintf("old%d", i), "x")
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	// The changelog topic was deleted and recreated with less in it.
	cl.Truncate()
	cl.AppendRaw([]byte("new"), []byte("y"))
	s = openKV(t, e, cl, false)
	res, err := stateengine.Restore(ctx, s, cl)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Wiped || !strings.Contains(res.Reason, "beyond the changelog end") {
		t.Fatalf("result %+v: want a wipe", res)
	}
	if d := cmp.Diff([]kvPair{{"new", "y"}}, drainKV(t)(s.All(false))); d != "" {
		t.Fatalf("after rebuild (-want +got):\n%s", d)
	}
	if !strings.Contains(lb.String(), "wiping store") {
		t.Fatalf("no log line about the wipe; log:\n%s", lb.String())
	}
	_ = s.Close()
	_ = e.Close()
}

func TestRestoreReportsUndecodableRecord(t *testing.T) {
	ctx := context.Background()
	e := testEngine(t, nil)
	cl := statetest.NewChangelog("app-win-changelog", 7)
	cl.AppendRaw([]byte("k\x00\x00\x00\x00\x00\x00\x00\x01"), []byte("ok"))
	cl.AppendRaw([]byte("short"), []byte("bad")) // a window key needs 8 bytes of start
	s, err := e.OpenWindow(ctx, state.Spec{Name: "win"}, 7, cl)
	if err != nil {
		t.Fatal(err)
	}
	_, err = stateengine.Restore(ctx, s, cl)
	if !stateengine.IsChangelogDecode(err) {
		t.Fatalf("restore error %v: want a ChangelogDecodeError", err)
	}
	for _, want := range []string{"app-win-changelog", "partition 7", "offset 1", `"win"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestCorruptCheckpointIsWipedAndRebuilt(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	var lb logBuffer
	cl := statetest.NewChangelog("c", 0)
	e := openEngineLog(t, fs, &lb)
	s := openKV(t, e, cl, false)
	put(t, s, "a", "1")
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	stateengine.CorruptCheckpointForTest(t, e, "kv", 0)
	s = openKV(t, e, cl, false)
	res, err := stateengine.Restore(ctx, s, cl)
	if err != nil {
		t.Fatal(err)
	}
	if res.From != 0 || res.Records != 1 {
		t.Fatalf("restore %+v: want a full rebuild", res)
	}
	if got := string(get(t, s, "a")); got != "1" {
		t.Fatalf("a = %q", got)
	}
	if !strings.Contains(lb.String(), "checkpoint is corrupt") {
		t.Fatalf("no log line; log:\n%s", lb.String())
	}
	_ = s.Close()
	_ = e.Close()
}

func TestCorruptDatabaseIsReportedOrWiped(t *testing.T) {
	fs := vfs.NewMem()
	e := openEngineLog(t, fs, nil)
	cl := statetest.NewChangelog("c", 0)
	s := openKV(t, e, cl, false)
	put(t, s, "a", "1")
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	_ = e.Close()
	// Overwrite every file of the database with garbage.
	dir := "/state/pebble"
	names, err := fs.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		f, err := fs.Create(fs.PathJoin(dir, n), vfs.WriteCategoryUnspecified)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = f.Write(bytes.Repeat([]byte{0xde, 0xad}, 100))
		_ = f.Close()
	}
	var lb logBuffer
	e2, err := stateengine.Open(stateengine.Options{Dir: "/state", FS: fs, MemoryBudget: stateengine.MinMemoryBudget, Logger: slog.New(slog.NewTextHandler(&lb, nil))})
	if err != nil {
		// A clear error is acceptable; a panic is not.
		if !strings.HasPrefix(err.Error(), "state: ") {
			t.Fatalf("error %q does not say where it comes from", err)
		}
		t.Logf("corrupt database reported: %v", err)
		return
	}
	defer e2.Close()
	if !strings.Contains(lb.String(), "corrupt") {
		t.Fatalf("database reopened without complaint; log:\n%s", lb.String())
	}
	s2 := openKV(t, e2, cl, false)
	if _, err := stateengine.Restore(context.Background(), s2, cl); err != nil {
		t.Fatal(err)
	}
	if got := string(get(t, s2, "a")); got != "1" {
		t.Fatalf("a = %q after rebuild", got)
	}
}
