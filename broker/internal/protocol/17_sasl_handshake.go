package protocol

// SaslHandshake, versions 0-1. After v1 the mechanism's exchange runs in
// SaslAuthenticate requests; after v0 (older clients, kafka-python) it runs
// in bare size-prefixed tokens (see readSecured), each answered the same
// way, and a failure closes the connection without an answer.
//
// On a SASL listener, before authentication, the client names a mechanism;
// the answer lists the enabled ones (SCRAM-SHA-512, SCRAM-SHA-256, PLAIN).
// Anywhere else (a listener without SASL, an authenticated connection) the
// request gets ILLEGAL_SASL_STATE.

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.SASLHandshake, 0, 1, handleSASLHandshake) }

func handleSASLHandshake(_ context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.SASLHandshakeRequest)
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	mechs := s.cfg.Security.mechanisms()
	resp.SupportedMechanisms = mechs
	sess := r.Session
	switch {
	case sess == nil || !sess.Listener.Protocol.SASL():
		resp.ErrorCode = kerr.IllegalSaslState.Code
	case sess.authed.Load() && (s.cfg.Security.ReauthLifetime <= 0 || r.Version == 0 || req.Mechanism != sess.mech):
		// Re-authentication (KIP-368) only where sessions end, over
		// SaslAuthenticate, with the mechanism of the first.
		resp.ErrorCode = kerr.IllegalSaslState.Code
	case !slices.Contains(mechs, req.Mechanism):
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
	default:
		sess.reauth = sess.authed.Load()
		sess.mech = req.Mechanism
		sess.conv = nil
		sess.rawSASL.Store(r.Version == 0)
	}
	return resp, nil
}
