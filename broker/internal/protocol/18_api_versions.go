package protocol

// ApiVersions, versions 0-4.
//
// Advertises exactly the API keys that have a registered handler, with their
// version ranges. An unsupported version is answered as KIP-511 asks (a v0
// response with UNSUPPORTED_VERSION and its own range; see decodeFrame), never by
// closing the connection: librdkafka falls back to a pre-0.10 protocol when
// ApiVersions fails. The response header is always v0, even for flexible
// versions, as in Kafka.
//
// One feature is advertised (v3+), where this server serves transactions:
// transaction.version, supported 0-2 and finalized at 2 (KIP-890 part 2, as
// Kafka 4.0 finalizes it on a new cluster). A client that reads it (franz-go)
// then ends every transaction with EndTxn v5, which bumps its epoch, and
// leaves the adding of partitions and of its group's offsets to the
// partition leader (Produce v12) and the group coordinator (TxnOffsetCommit
// v5). Clients that do not read features go on with the older versions.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/txn"
)

func init() { register(kmsg.ApiVersions, 0, 4, handleApiVersions) }

func handleApiVersions(_ context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.ApiVersionsRequest)
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = supportedKeys()
	if s.cfg.Cluster != nil {
		resp.ApiKeys = withClusterOnlyKeys(resp.ApiKeys)
	}
	if r.Version >= 3 {
		if d, _, _ := txnDriver(s); d != nil {
			resp.SupportedFeatures = []kmsg.ApiVersionsResponseSupportedFeature{{
				Name: transactionVersionFeature, MinVersion: 0, MaxVersion: int16(txn.TV2),
			}}
			// NB: the epoch of a feature level that never changes; Kafka
			// uses the metadata offset that finalized it.
			resp.FinalizedFeaturesEpoch = 0
			resp.FinalizedFeatures = []kmsg.ApiVersionsResponseFinalizedFeature{{
				Name: transactionVersionFeature, MinVersionLevel: int16(txn.TV2), MaxVersionLevel: int16(txn.TV2),
			}}
		}
	}
	return resp, nil
}

// transactionVersionFeature is the feature naming the transaction protocol
// the cluster runs (KIP-890 part 2's transaction.version).
const transactionVersionFeature = "transaction.version"
