// Package protocol is Weir's Kafka wire-protocol server: it reads request
// frames from a connection, decodes them with franz-go's kmsg, hands each to
// the handler registered for its API key, and writes the encoded responses
// back in request order.
//
// # Files
//
// One file per API key, named by key (00_produce.go, 01_fetch.go, ...,
// 18_api_versions.go). Each file opens with a comment stating the versions it
// supports and where it deviates from Apache Kafka. The machinery lives in
// server.go (Server, Config, the accept loop and connection limits), conn.go
// (framing, header parsing, ordering, frame and idle deadlines), budget.go
// (the request-memory budgets), metrics.go (counters and the log limiter) and
// handler.go (the handler table).
//
// # Connection defences
//
// What a peer can hold is bounded: a frame's bytes are charged to the
// connection's share of the request memory and to the server's budget as
// they arrive (a connection's first frame is capped instead); a frame must
// arrive within FrameReadTimeout of its first byte; a connection with no
// traffic and nothing in hand is closed after ConnectionsMaxIdle;
// MaxConnections and MaxConnectionsPerIP refuse connections beyond them; a
// temporary accept error is retried. Each close, refusal, wait and retry is
// counted in a metric and logged through a limiter.
//
// # How a handler file plugs in
//
// A handler file registers itself from an init function; nothing else in the
// package needs editing:
//
//	func init() { register(kmsg.OffsetCommit, 0, 8, handleOffsetCommit) }
//
//	func handleOffsetCommit(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
//		req := r.Body.(*kmsg.OffsetCommitRequest)
//		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
//		...
//		return resp, nil
//	}
//
// register(key, minVersion, maxVersion, fn) adds the key to the table;
// ApiVersions advertises exactly the registered keys with those ranges, so a
// key is advertised if and only if its file is compiled in. Registering a key
// twice panics at init (a programming error).
//
// The dispatcher guarantees, before calling fn:
//   - r.Body is the kmsg request for the key, already decoded at version
//     r.Version, which lies in [minVersion, maxVersion];
//   - the response the handler returns gets r.Version set by the
//     dispatcher (handlers need not call SetVersion) and is encoded with the
//     right response header (v0 or flexible v1);
//   - ctx is cancelled when the connection closes or the server shuts down.
//
// Return values:
//   - (resp, nil): resp is written to the client in request order.
//   - (nil, nil): no response at all (Produce with acks=0 only).
//   - (&Deferred{Response: resp, Wait: fn}, nil): the request's ordered
//     work is done, but resp may be sent only after fn returns (Produce
//     waiting for its fsync). The connection goes on with its next request
//     meanwhile; fn runs on the connection's writer, and responses still
//     leave in request order.
//   - (_, err): a protocol violation; the connection is closed and err logged.
//     Ordinary failures are Kafka error codes (kerr.X.Code) inside resp,
//     never a Go error.
//
// Request bytes: r.Body's byte slices alias the frame read from the wire.
// No handler may keep them once it returns (copy what must outlive the
// call): the frame's request memory is released then, and a Produce
// frame's buffer is reused for a later frame (conn.go, readBody). A
// Deferred's Wait must not read them either.
//
// Requests on one connection are handled one at a time, in order (as Kafka
// does), so a handler may block (a long-polling fetch, a join-group wait)
// without breaking ordering; different connections run concurrently, so
// handlers must be safe for concurrent use.
//
// # What handlers can reach
//
// The *Server passed to every handler exposes:
//   - s.Topics (*topics.Registry): topic existence, partition counts and each
//     partition's log. Get(name) looks a topic up; Topic.NumPartitions() and
//     Topic.Partition(i) give its partitions; Partition.Log() is the storage
//     log (Append, Read, LogStartOffset, HighWatermark, LogEndOffset, Changed).
//     Ensure(ctx, name, spec) creates a topic if it is missing (used for
//     internal topics such as the compacted __consumer_offsets: pass
//     topics.Spec{Partitions: n, Configs: map[string]string{"cleanup.policy":
//     "compact"}}); names beginning with "__" are reported as internal in
//     Metadata.
//   - s.Node() (NodeID, advertised Host and Port) and s.ClusterID(), for
//     FindCoordinator and Metadata answers.
//   - s.Logger (*slog.Logger).
//   - s.Extension(name): long-lived state that a group of handlers share
//     (the group coordinator). An extension registers itself from init with
//     RegisterExtension(name, open); open(s) runs when the server starts, and
//     the value's Close runs when the server closes, after every connection
//     has finished. An extension that owns goroutines stops and waits for them
//     in Close.
package protocol
