package quorum

import (
	"log/slog"
	"os"
	"testing"
)

// testWriter sends log lines to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// testLogger logs to t at warning level and above: raft's info lines
// (elections, term changes) would drown a failing test's output.
// QUORUM_LOG=debug or info lowers the level.
func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	switch os.Getenv("QUORUM_LOG") {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}
