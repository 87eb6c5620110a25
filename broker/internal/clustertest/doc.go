// Package clustertest starts an in-process test cluster of N nodes on
// loopback with a fault layer between them, for the tests of whatever a
// node is (a broker, a replica, a controller): the package owns the
// network, the caller says how to open a node.
//
// Every node gets a controller listener on 127.0.0.1:0, registered in a
// faultnet.Network, and a dial function through that network: every
// node-to-node connection a node makes with it (raft, broker heartbeats,
// forwarded requests) can be dropped, delayed, blackholed or cut in one
// direction, and healed (Cluster.Net). Clients keep their own direct
// connections. Nodes can be stopped and restarted on the same controller
// address. The random choices of the network come from a seed that is
// logged (WEIR_CLUSTER_SEED=N replays it), the cluster is closed in
// t.Cleanup, and no goroutine may outlive it.
//
// For the same cluster as separate processes (SIGKILL, SIGSTOP), see
// internal/proccluster.
package clustertest
