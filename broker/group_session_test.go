package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// joinWithSession sends JoinGroup requests for group with the given session
// timeout, repeating once with the assigned member id when the broker
// answers MEMBER_ID_REQUIRED, and returns the final error code.
func joinWithSession(t *testing.T, b *Broker, group string, session time.Duration) int16 {
	t.Helper()
	c := newClient(t, b)
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group = group
	req.SessionTimeoutMillis = int32(session / time.Millisecond)
	req.RebalanceTimeoutMillis = 5000
	req.ProtocolType = "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name = "range"
	p.Metadata = []byte{0, 0, 0, 0, 0, 0, 0, 0}
	req.Protocols = append(req.Protocols, p)
	for range 2 {
		resp, err := req.RequestWith(testCtx(t), c)
		if err != nil {
			t.Fatalf("join group: %v", err)
		}
		if resp.ErrorCode != kerr.MemberIDRequired.Code {
			return resp.ErrorCode
		}
		req.MemberID = resp.MemberID
	}
	t.Fatal("join group: MEMBER_ID_REQUIRED twice")
	return 0
}

// TestGroupSessionTimeoutBounds checks that the session timeout bounds of
// Options reach the group coordinator: a 1s session is refused under the
// default 6s minimum and accepted with a 500ms minimum.
func TestGroupSessionTimeoutBounds(t *testing.T) {
	def := startBroker(t, Options{GroupInitialRebalanceDelay: -1})
	if code := joinWithSession(t, def, "g", time.Second); code != kerr.InvalidSessionTimeout.Code {
		t.Fatalf("default bounds, 1s session: error %v, want INVALID_SESSION_TIMEOUT", kerr.ErrorForCode(code))
	}
	low := startBroker(t, Options{GroupInitialRebalanceDelay: -1, GroupMinSessionTimeout: 500 * time.Millisecond})
	if code := joinWithSession(t, low, "g", time.Second); code != 0 {
		t.Fatalf("500ms minimum, 1s session: error %v, want none", kerr.ErrorForCode(code))
	}
	capped := startBroker(t, Options{GroupInitialRebalanceDelay: -1, GroupMaxSessionTimeout: 10 * time.Second})
	if code := joinWithSession(t, capped, "g", 20*time.Second); code != kerr.InvalidSessionTimeout.Code {
		t.Fatalf("10s maximum, 20s session: error %v, want INVALID_SESSION_TIMEOUT", kerr.ErrorForCode(code))
	}
}

func TestGroupSessionTimeoutBoundsValidated(t *testing.T) {
	opts := Options{GroupMinSessionTimeout: time.Minute, GroupMaxSessionTimeout: time.Second}
	opts.EnsureDefaults()
	err := opts.Validate()
	if err == nil || !strings.Contains(err.Error(), "session timeout bounds") {
		t.Fatalf("Validate with min 1m > max 1s: %v, want a session timeout bounds error", err)
	}
	opts = Options{GroupMinSessionTimeout: -time.Second}
	opts.EnsureDefaults()
	if err := opts.Validate(); err == nil {
		t.Fatal("Validate accepted a negative minimum session timeout")
	}
}
