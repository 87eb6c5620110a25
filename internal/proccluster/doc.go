// Package proccluster runs a Weir cluster as separate `weir broker`
// processes for tests that need what one process cannot do to itself:
// SIGKILL (no deferred code, no flush), SIGSTOP and SIGCONT (a node frozen
// in the middle of whatever it was doing), and a restart from what the
// killed process left on disk.
//
// The weir binary is built once per test binary (Main removes it at the
// end). Start gives every node a client listener and a controller listener
// on free loopback ports and a data directory under t.TempDir, starts the
// processes and waits until each serves Kafka requests. Each node's output
// goes to a log file of its own, kept across restarts; when the test fails,
// the tail of every log is printed. Everything stops in t.Cleanup.
//
// NB: the ports are found by listening on 127.0.0.1:0 and closing the
// listener, so another process could take one before the node binds it; a
// node that cannot bind fails to start and the test says so with its log.
//
// For a cluster in one process with a fault layer between its nodes, see
// broker/internal/clusternet.
package proccluster
