package protocol

// SaslAuthenticate, versions 0-2: one step of the exchange of the
// mechanism SaslHandshake chose.
//
// PLAIN takes one step (user and password, checked against the PLAIN
// credentials file). SCRAM takes two (RFC 5802: client-first, then
// client-final), run by the xdg-go/scram server conversation against the
// salted and hashed credentials of the data directory. Success sets the
// connection's principal to User:<name>. Failure answers
// SASL_AUTHENTICATION_FAILED, logs the client's address (never what it
// sent), counts it, and closes the connection once the answer is written;
// repeated failures from one address are answered ever more slowly (see
// securityState.failed). With Security.ReauthLifetime, the answer carries
// the session's lifetime and the client re-authenticates (KIP-368) as the
// same principal before it ends.

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/auth"
)

func init() { register(kmsg.SASLAuthenticate, 0, 2, handleSASLAuthenticate) }

func handleSASLAuthenticate(ctx context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.SASLAuthenticateRequest)
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	sess := r.Session
	if sess == nil || sess.mech == "" || sess.authed.Load() && !sess.reauth {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		msg := "SaslAuthenticate without a SaslHandshake naming a mechanism first"
		resp.ErrorMessage = &msg
		r.closeAfter = true
		return resp, nil
	}
	if sess.mech != "PLAIN" {
		if err := auth.NotReady(s.cfg.Security.SCRAM); err != nil {
			// NB: an answered failure is final for clients; a closed
			// connection they retry.
			return nil, fmt.Errorf("protocol: SASL authentication not attempted: %w", err)
		}
	}
	out, user, done, err := s.saslStep(sess, req.SASLAuthBytes)
	if err == nil && done && sess.reauth && "User:"+user != sess.principal {
		err = fmt.Errorf("re-authentication as User:%s on a connection of %s", user, sess.principal)
	}
	if err != nil {
		sess.conv = nil
		s.sec.authFailures.Inc()
		s.logLimited(slog.LevelWarn, "sasl", "SASL authentication failed",
			"remote", r.Remote, "listener", sess.Listener.Name, "mechanism", sess.mech, "err", err)
		if d := s.sec.failed(sess.Host, time.Now()); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		if sess.rawSASL.Load() {
			return nil, fmt.Errorf("protocol: SASL authentication failed (SaslHandshake v0: closed without an answer): %w", err)
		}
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := fmt.Sprintf("Authentication failed during authentication due to invalid credentials with SASL mechanism %s", sess.mech)
		resp.ErrorMessage = &msg
		r.closeAfter = true
		return resp, nil
	}
	resp.SASLAuthBytes = out
	if done {
		sess.principal = "User:" + user
		sess.conv = nil
		sess.reauth = false
		sess.rawSASL.Store(false)
		sess.authed.Store(true)
		if lt := s.cfg.Security.ReauthLifetime; lt > 0 {
			sess.expires = time.Now().Add(lt)
			resp.SessionLifetimeMillis = lt.Milliseconds() // v1+; a v0 client is closed at the end
		}
		s.sec.authSuccesses.Inc()
		s.Logger.Debug("SASL authenticated", "remote", r.Remote, "principal", sess.principal, "mechanism", sess.mech)
	}
	return resp, nil
}

// saslStep runs one step of sess's mechanism: the bytes to answer with,
// and once the exchange is over, the authenticated user. Its errors name
// what failed but never what the client sent.
func (s *Server) saslStep(sess *Session, in []byte) (out []byte, user string, done bool, err error) {
	sec := &s.cfg.Security
	switch sess.mech {
	case "PLAIN":
		u, pw, err := auth.ParsePlain(in)
		if err != nil {
			return nil, "", false, err
		}
		if !sec.Plain.Check(u, pw) {
			return nil, "", false, fmt.Errorf("wrong password or unknown user %q", u)
		}
		return nil, u, true, nil
	case auth.SCRAMSHA256, auth.SCRAMSHA512:
		if sess.conv == nil {
			if sess.conv, err = auth.NewSCRAMExchange(sec.SCRAM, sess.mech); err != nil {
				return nil, "", false, err
			}
		}
		reply, err := sess.conv.Step(string(in))
		if err != nil {
			if u := sess.conv.Username(); u != "" {
				return nil, "", false, fmt.Errorf("user %q: %w", u, err)
			}
			return nil, "", false, err
		}
		if !sess.conv.Done() {
			return []byte(reply), "", false, nil
		}
		if !sess.conv.Valid() {
			return nil, "", false, fmt.Errorf("user %q: invalid proof", sess.conv.Username())
		}
		return []byte(reply), sess.conv.Username(), true, nil
	}
	return nil, "", false, fmt.Errorf("mechanism %q is not enabled", sess.mech)
}
