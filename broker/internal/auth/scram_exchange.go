package auth

import (
	"crypto/hmac"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/xdg-go/scram"
)

// SCRAMExchange is the server side of one SCRAM authentication: the
// xdg-go/scram conversation, plus one tolerance. librdkafka before 2.1
// (kcat, confluent-kafka on Debian 12) sends its own nonce again in front
// of the combined nonce in its client-final-message; the conversation
// refuses that, so when, and only when, the nonce is exactly that form the
// proof is checked here over the messages as sent (as Kafka's own broker
// did for years).
type SCRAMExchange struct {
	store Credentials
	mech  string
	conv  *scram.ServerConversation

	step        int
	clientFirst string // client-first-message, as received
	serverFirst string // server-first-message, as sent

	user  string
	done  bool
	valid bool
}

// NewSCRAMExchange starts an exchange for mech against s.
func (s *UserStore) NewSCRAMExchange(mech string) (*SCRAMExchange, error) {
	return NewSCRAMExchange(s, mech)
}

// NewSCRAMExchange starts an exchange for mech against the credentials c.
func NewSCRAMExchange(c Credentials, mech string) (*SCRAMExchange, error) {
	conv, err := NewSCRAMConversation(c, mech)
	if err != nil {
		return nil, err
	}
	return &SCRAMExchange{store: c, mech: mech, conv: conv}, nil
}

// Step answers one client message. Once Done, Valid says whether the client
// proved the password, and Username names it.
func (x *SCRAMExchange) Step(in string) (string, error) {
	x.step++
	switch x.step {
	case 1:
		x.clientFirst = in
		out, err := x.conv.Step(in)
		x.serverFirst = out
		x.user = x.conv.Username()
		return out, err
	case 2:
		out, err := x.conv.Step(in)
		if err != nil && doubledNonce(x.clientFirst, x.serverFirst, in) {
			out, err = x.verifyFinal(in)
		} else {
			x.done, x.valid = x.conv.Done(), x.conv.Valid()
		}
		return out, err
	}
	return "", errors.New("auth: SCRAM exchange already over")
}

// Done reports whether the exchange is over.
func (x *SCRAMExchange) Done() bool { return x.done }

// Valid reports whether the client proved the password.
func (x *SCRAMExchange) Valid() bool { return x.done && x.valid }

// Username is the user the client named.
func (x *SCRAMExchange) Username() string { return x.user }

// attr returns the value of attribute name in a SCRAM message.
func attr(msg, name string) (string, bool) {
	for _, f := range strings.Split(msg, ",") {
		if v, ok := strings.CutPrefix(f, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// doubledNonce reports whether the client-final-message's nonce is the
// client's nonce followed by the whole nonce of the server-first-message.
func doubledNonce(clientFirst, serverFirst, clientFinal string) bool {
	_, bare, ok := cutGS2(clientFirst)
	if !ok {
		return false
	}
	cn, ok1 := attr(bare, "r")
	sn, ok2 := attr(serverFirst, "r")
	fn, ok3 := attr(clientFinal, "r")
	return ok1 && ok2 && ok3 && cn != "" && fn == cn+sn
}

// cutGS2 splits the gs2 header ("n,," or "n,a=...,", no channel binding)
// from a client-first-message.
func cutGS2(clientFirst string) (header, bare string, ok bool) {
	if !strings.HasPrefix(clientFirst, "n,") {
		return "", "", false
	}
	i := strings.Index(clientFirst[2:], ",")
	if i < 0 {
		return "", "", false
	}
	return clientFirst[:2+i+1], clientFirst[2+i+1:], true
}

// verifyFinal checks the client's proof over the messages as exchanged
// and answers the server-final-message.
func (x *SCRAMExchange) verifyFinal(final string) (string, error) {
	x.done = true
	header, bare, _ := cutGS2(x.clientFirst)
	if c, ok := attr(final, "c"); !ok || c != base64.StdEncoding.EncodeToString([]byte(header)) {
		return "e=channel-bindings-dont-match", errors.New("auth: SCRAM channel binding mismatch")
	}
	i := strings.LastIndex(final, ",p=")
	if i < 0 {
		return "e=invalid-encoding", errors.New("auth: SCRAM client-final-message without a proof")
	}
	proof, err := base64.StdEncoding.DecodeString(final[i+3:])
	if err != nil {
		return "e=invalid-encoding", fmt.Errorf("auth: SCRAM proof: %w", err)
	}
	cred, ok := x.store.Lookup(x.user, x.mech)
	h, _, _ := hashOf(x.mech)
	if !ok {
		return "e=unknown-user", errors.New("auth: unknown user")
	}
	authMsg := bare + "," + x.serverFirst + "," + final[:i]
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(h, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	sig := mac(cred.StoredKey, authMsg)
	if len(proof) != len(sig) {
		return "e=invalid-proof", errors.New("auth: invalid proof")
	}
	clientKey := make([]byte, len(sig))
	for j := range sig {
		clientKey[j] = proof[j] ^ sig[j]
	}
	sum := h()
	sum.Write(clientKey)
	if subtle.ConstantTimeCompare(sum.Sum(nil), cred.StoredKey) != 1 {
		return "e=invalid-proof", errors.New("auth: invalid proof")
	}
	x.valid = true
	return "v=" + base64.StdEncoding.EncodeToString(mac(cred.ServerKey, authMsg)), nil
}
