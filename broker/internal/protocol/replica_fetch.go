package protocol

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// replicaID returns the replica id of a Fetch: ReplicaID before v15,
// ReplicaState.ID from v15; -1 for a consumer.
func replicaID(req *kmsg.FetchRequest, version int16) int32 {
	if version >= 15 {
		return req.ReplicaState.ID
	}
	return req.ReplicaID
}

// replicaFetch answers a follower's Fetch (a replica id >= 0): the
// replication layer reads past the high watermark; without replication it
// is refused as before.
func replicaFetch(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.FetchRequest)
	if s.cfg.Replication == nil {
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = kerr.NotLeaderForPartition.Code
		return resp, nil
	}
	// The batches go out as a consumer's do (fetchbufs.go, sendfile.go):
	// from kept buffers, or from the segment files on plaintext TCP.
	fl := newFetchLease(ctx)
	return s.cfg.Replication.ServeFetch(ctx, req, r.Version, fl.readAny), nil
}
