package protocol

// ApiVersions, versions 0-4.
//
// Advertises exactly the API keys that have a registered handler, with their
// version ranges. An unsupported version is answered as KIP-511 asks (a v0
// response with UNSUPPORTED_VERSION and the ranges; see decodeFrame), never by
// closing the connection: librdkafka falls back to a pre-0.10 protocol when
// ApiVersions fails. The response header is always v0, even for flexible
// versions, as in Kafka. No features are advertised (no KRaft features yet).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.ApiVersions, 0, 4, handleApiVersions) }

func handleApiVersions(_ context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.ApiVersionsRequest)
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = supportedKeys()
	if s.cfg.Cluster != nil {
		resp.ApiKeys = withClusterOnlyKeys(resp.ApiKeys)
	}
	return resp, nil
}
