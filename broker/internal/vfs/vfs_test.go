package vfs

import (
	"errors"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// contract runs the behaviour every FS must have.
func contract(t *testing.T, fs FS, dir string) {
	t.Helper()
	if err := fs.MkdirAll(dir); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "a")
	f, err := fs.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("hello ")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(5); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("!")); err != nil { // appends at the new end
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if n, err := f.Size(); err != nil || n != 6 {
		t.Fatalf("size %d, %v", n, err)
	}
	buf := make([]byte, 6)
	if _, err := f.ReadAt(buf, 0); err != nil || string(buf) != "hello!" {
		t.Fatalf("read %q, %v", buf, err)
	}
	f.Close()
	if err := fs.Rename(p, filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	names, err := fs.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"b"}, names); diff != "" {
		t.Fatal(diff)
	}
	if err := fs.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	g, err := fs.OpenReadWrite(filepath.Join(dir, "b"))
	if err != nil {
		t.Fatal(err)
	}
	g.Write([]byte("?"))
	g.Close()
	r, err := fs.Open(filepath.Join(dir, "b"))
	if err != nil {
		t.Fatal(err)
	}
	buf = make([]byte, 7)
	if _, err := r.ReadAt(buf, 0); err != nil || string(buf) != "hello!?" {
		t.Fatalf("read %q, %v", buf, err)
	}
	r.Close()
	if _, err := fs.Open(filepath.Join(dir, "missing")); !IsNotExist(err) {
		t.Fatalf("open missing: %v", err)
	}
	if err := fs.Remove(filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	if fs.Exists(filepath.Join(dir, "b")) {
		t.Fatal("removed file exists")
	}
	if err := fs.RemoveAll(dir); err != nil || fs.Exists(dir) {
		t.Fatalf("remove all: %v", err)
	}
}

func TestContract(t *testing.T) {
	t.Run("os", func(t *testing.T) { contract(t, Default, filepath.Join(t.TempDir(), "d")) })
	t.Run("mem", func(t *testing.T) { contract(t, NewMem(), "/d") })
	t.Run("crashable", func(t *testing.T) { contract(t, NewCrashableMem(), "/d") })
	t.Run("injecting", func(t *testing.T) { contract(t, NewInjecting(NewMem(), nil), "/d") })
}

func TestCrashKeepsOnlyWhatIsDurable(t *testing.T) {
	m := NewCrashableMem()
	m.MkdirAll("/d")
	synced, _ := m.Create("/d/synced")
	synced.Write([]byte("kept"))
	synced.Sync()
	synced.Write([]byte(" lost"))
	noDirSync, _ := m.Create("/d/new")
	m.SyncDir("/d")
	noDirSync.Write([]byte("x"))
	noDirSync.Sync()
	late, _ := m.Create("/d/late") // created after the last SyncDir
	late.Write([]byte("y"))
	late.Sync()

	c := m.Crash(CrashOptions{})
	got, err := c.ReadFile("/d/synced")
	if err != nil || string(got) != "kept" {
		t.Fatalf("synced file: %q, %v", got, err)
	}
	if got, _ := c.ReadFile("/d/new"); string(got) != "x" {
		t.Fatalf("file synced after its dir sync: %q", got)
	}
	if c.Exists("/d/late") {
		t.Fatal("a file whose directory was not synced survived")
	}
	// The old FS goes on untouched.
	if got, _ := m.ReadFile("/d/synced"); string(got) != "kept lost" {
		t.Fatalf("running fs changed: %q", got)
	}
}

func TestCrashRenameAndRemoveNeedDirSync(t *testing.T) {
	m := NewCrashableMem()
	m.MkdirAll("/d")
	f, _ := m.Create("/d/a")
	f.Write([]byte("1"))
	f.Sync()
	m.SyncDir("/d")
	m.Rename("/d/a", "/d/b")
	if c := m.Crash(CrashOptions{}); !c.Exists("/d/a") || c.Exists("/d/b") {
		t.Fatal("an unsynced rename was durable")
	}
	m.SyncDir("/d")
	if c := m.Crash(CrashOptions{}); c.Exists("/d/a") || !c.Exists("/d/b") {
		t.Fatal("a synced rename was not durable")
	}
	m.Remove("/d/b")
	if c := m.Crash(CrashOptions{}); !c.Exists("/d/b") {
		t.Fatal("an unsynced remove was durable")
	}
}

func TestCrashRandKeepsAPrefixOfTheTail(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		m := NewCrashableMem()
		m.MkdirAll("/d")
		f, _ := m.Create("/d/a")
		f.Write([]byte("durable"))
		f.Sync()
		m.SyncDir("/d")
		f.Write([]byte("0123456789"))
		got, _ := m.Crash(CrashOptions{Rand: rng}).ReadFile("/d/a")
		if len(got) < 7 || string(got[:7]) != "durable" || len(got) > 17 {
			t.Fatalf("after crash: %q", got)
		}
		diff := 0
		for i := 7; i < len(got); i++ {
			if got[i] != "0123456789"[i-7] {
				diff++
			}
		}
		if diff > 1 {
			t.Fatalf("more than one damaged byte: %q", got)
		}
	}
}

func TestInjecting(t *testing.T) {
	inj := NewInjecting(NewMem(), nil)
	inj.PartialWrites = true
	inj.MkdirAll("/d")
	f, _ := inj.Create("/d/a")
	inj.SetInjector(func(op Op, name string) error {
		if op == OpWrite {
			return ErrNoSpace
		}
		return nil
	})
	n, err := f.Write([]byte("abcd"))
	if !IsNoSpace(err) || n != 2 {
		t.Fatalf("write on a full disk: %d, %v", n, err)
	}
	if !errors.Is(err, ErrNoSpace) {
		t.Fatal("not the injected error")
	}
	inj.SetInjector(nil)
	if _, err := f.Write([]byte("e")); err != nil {
		t.Fatal(err)
	}
	if size, _ := f.Size(); size != 3 {
		t.Fatalf("size %d, want 3 (2 partial + 1)", size)
	}
}
