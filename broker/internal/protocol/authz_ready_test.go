package protocol

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/auth"
)

// readiness is not ready until ready is set, as a cluster node's image
// before it has replayed.
type readiness struct{ ready atomic.Bool }

func (r *readiness) Ready() error {
	if !r.ready.Load() {
		return errors.New("still replaying")
	}
	return nil
}

type readyACLs struct {
	auth.ACLSource
	*readiness
}

type readyCredentials struct {
	auth.Credentials
	*readiness
}

// TestAuthzNotReady: while the ACL source is not ready, a request that
// needs an authorization decision is refused with an error (the
// connection is closed, which clients retry), even for a super user, and
// SCRAM authentication is not attempted; once ready, both proceed.
func TestAuthzNotReady(t *testing.T) {
	s := authzServer(t)
	users, err := auth.OpenUserStore(filepath.Join(t.TempDir(), "users"))
	if err != nil {
		t.Fatal(err)
	}
	src := &readiness{}
	s.cfg.Security.ACLs = readyACLs{s.cfg.Security.ACLs, src}
	s.cfg.Security.SCRAM = readyCredentials{users, src}
	dispatch := func(principal string, req kmsg.Request) error {
		req.SetVersion(12)
		h, _ := lookupHandler(req.Key())
		sess := &Session{Listener: s.defaultListener(), Host: "10.0.0.1", principal: principal}
		sess.authed.Store(true)
		_, err := s.dispatch(context.Background(), &frame{h: h, req: &Request{Key: req.Key(), Version: 12, Body: req, Session: sess}})
		return err
	}
	if err := dispatch("User:admin", kmsg.NewPtrMetadataRequest()); err == nil {
		t.Fatal("Metadata answered before the ACL source was ready")
	}
	sasl := func() error {
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.SASLAuthBytes = []byte("n,,n=app,r=abcdef")
		sess := &Session{Listener: s.defaultListener(), Host: "10.0.0.1", mech: auth.SCRAMSHA512}
		_, err := handleSASLAuthenticate(context.Background(), s, &Request{Key: req.Key(), Body: req, Session: sess})
		return err
	}
	if err := sasl(); err == nil {
		t.Fatal("SCRAM answered before the credentials were ready")
	}
	src.ready.Store(true)
	if err := dispatch("User:admin", kmsg.NewPtrMetadataRequest()); err != nil {
		t.Fatalf("Metadata once ready: %v", err)
	}
	if err := sasl(); err != nil {
		t.Fatalf("SCRAM once ready: %v (an unknown user is an answered failure, not an error)", err)
	}
}
