// Package cluster makes a Weir broker one node of a cluster: it wires the
// Raft metadata quorum (package quorum) and the metadata controller and
// image (package metadata) into the broker, and gives the protocol server
// its cluster view (protocol.Cluster).
//
// A node is a controller voter, a broker, or both. A broker-only node
// (--roles broker, an id outside the voters) has no raft: it fetches the
// committed metadata log from the voters over the controller RPC, as an
// observer (observer.go), and rebuilds its image from them at every
// start. The parts, all owned by Node (node.go):
//
//   - imageSM (image.go): the quorum's state machine. The raft goroutine
//     applies committed entries to a metadata.Image under imageSM.mu and
//     publishes an immutable clone (atomic pointer) after each; an entry
//     the image refuses as not fitting (metadata.IsInvalid) is a no-op on
//     every node alike and is remembered for the driver. Node.View turns
//     the published image into a protocol.ClusterView, cached per applied
//     offset and raft leader. The controller the view names is the raft
//     leader when it is a live broker, else a live broker (clients send
//     controller requests there; any broker forwards them).
//   - driver (driver.go): on the raft leader, one goroutine runs the
//     metadata.Controller: it commits an empty barrier entry on becoming
//     leader, builds the controller on the image that then holds every
//     earlier entry, and takes requests one at a time: the controller's
//     records for a request are proposed as one entry and the reply goes
//     once that entry is applied locally. A failed or refused proposal
//     Resets the controller to the committed image and the caller gets an
//     error (the forwarding broker retries). The driver ticks the
//     controller at its Deadline (session expiry: fencing).
//   - the controller listener (rpc.go): each voter's --controller-voters
//     address carries raft traffic (connections opening with "WQR1", handed
//     to the quorum transport) and the broker-to-controller RPC: Kafka
//     frames of BrokerRegistration, BrokerHeartbeat and the admin requests
//     brokers forward, answered by the driver, whose reply header carries
//     the metadata offset the reply's changes are applied at.
//   - the observer (observer.go), on broker-only nodes: one goroutine
//     long-polls a voter (the raft leader when known) for the entries
//     after its applied offset, or the image's snapshot when the voter no
//     longer keeps them, and applies them to its imageSM; the voter's
//     reply names the raft leader, where the node's controller requests
//     go. Its reconciler waits until the image has caught up once.
//   - producer ids (pids.go): InitProducerId hands out ids from blocks the
//     controller allocates to this broker (AllocateProducerIds); the
//     member loop keeps a spare block.
//   - the broker side (node.go): registration and heartbeats every
//     HeartbeatInterval to the raft leader's controller listener; Forward
//     sends an admin request there and waits until the local image has
//     applied the reply's offset; Close first asks for a controlled
//     shutdown (leaderships moved away), bounded by ShutdownTimeout.
//   - the reconciler (node.go): after each change of the image, the local
//     topic registry is made to hold exactly the image's topics, with the
//     image's topic ids, partition counts and configs.
//   - metrics (metrics.go): weir_cluster_* gauges read from the image at
//     scrape time, beside the quorum's weir_quorum_*, in the node's own
//     registry (Node.Gatherer), which the broker serves on /metrics.
//
// Lock order: imageSM.mu is a leaf (held only inside Apply, Snapshot,
// Restore and the short readers); the raft goroutine never waits on the
// driver or the member, and the driver waits on the raft goroutine
// (Propose) with no lock held. rpcConn.mu is held for one whole RPC.
//
// Every broker creates a local log for every partition of every topic of
// the image, internal ones (__consumer_offsets) included; partition data is
// replicated by broker/internal/replica. A group's coordinator is the
// leader of its __consumer_offsets partition (broker/internal/ownership).
package cluster
