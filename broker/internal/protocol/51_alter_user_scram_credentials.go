package protocol

// AlterUserScramCredentials, version 0: upsert (from the client's salt
// and salted password) or delete users' SCRAM credentials, all written to
// the credentials file at once. A user named twice in one request, an
// unknown mechanism, iterations outside 4096..16384, or the deletion of a
// missing credential are refused for that user alone.

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/auth"
)

func init() { register(kmsg.AlterUserSCRAMCredentials, 0, 0, handleAlterUserSCRAM) }

func handleAlterUserSCRAM(_ context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.AlterUserSCRAMCredentialsRequest)
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	store, _ := s.cfg.Security.SCRAM.(SCRAMWriter)
	type userResult struct {
		code int16
		err  error
	}
	results := map[string]*userResult{}
	var order []string
	note := func(user string) *userResult {
		if res, ok := results[user]; ok {
			return res
		}
		res := &userResult{}
		results[user] = res
		order = append(order, user)
		return res
	}
	fail := func(user string, code *kerr.Error, err error) {
		if res := note(user); res.code == 0 {
			res.code, res.err = code.Code, err
		}
	}
	seen := map[[2]string]bool{}
	var changes []auth.Change
	var changeUser []string
	add := func(user string, mech int8, cred *auth.Credential) {
		key := [2]string{user, fmt.Sprint(mech)}
		if seen[key] {
			fail(user, kerr.DuplicateResource, fmt.Errorf("user %q, mechanism %d altered twice", user, mech))
			return
		}
		seen[key] = true
		changes = append(changes, auth.Change{User: user, Mech: scramMechName(mech), Cred: cred})
		changeUser = append(changeUser, user)
	}
	for _, d := range req.Deletions {
		note(d.Name)
		switch {
		case store == nil:
			fail(d.Name, kerr.UnsupportedVersion, errors.New("SCRAM credentials are not kept by this broker (cluster mode)"))
		case d.Name == "":
			fail(d.Name, kerr.UnacceptableCredential, errors.New("empty user name"))
		case scramMechName(d.Mechanism) == "":
			fail(d.Name, kerr.UnsupportedSaslMechanism, fmt.Errorf("unknown SCRAM mechanism %d", d.Mechanism))
		default:
			add(d.Name, d.Mechanism, nil)
		}
	}
	for _, u := range req.Upsertions {
		note(u.Name)
		mech := scramMechName(u.Mechanism)
		switch {
		case store == nil:
			fail(u.Name, kerr.UnsupportedVersion, errors.New("SCRAM credentials are not kept by this broker (cluster mode)"))
		case u.Name == "":
			fail(u.Name, kerr.UnacceptableCredential, errors.New("empty user name"))
		case mech == "":
			fail(u.Name, kerr.UnsupportedSaslMechanism, fmt.Errorf("unknown SCRAM mechanism %d", u.Mechanism))
		default:
			cred, err := auth.CredentialFromSalted(mech, u.Salt, u.SaltedPassword, int(u.Iterations))
			if err != nil {
				fail(u.Name, kerr.UnacceptableCredential, err)
				continue
			}
			add(u.Name, u.Mechanism, &cred)
		}
	}
	// A user with any refused change has none applied.
	var apply []auth.Change
	var applyUser []string
	for i, ch := range changes {
		if results[changeUser[i]].code == 0 {
			apply, applyUser = append(apply, ch), append(applyUser, changeUser[i])
		}
	}
	if len(apply) > 0 {
		errs, err := store.Apply(apply)
		if err != nil {
			for _, u := range applyUser {
				fail(u, kerr.KafkaStorageError, err)
			}
		}
		for i, e := range errs {
			if e != nil {
				fail(applyUser[i], kerr.ResourceNotFound, e)
			}
		}
	}
	for _, u := range order {
		res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		res.User = u
		res.ErrorCode = results[u].code
		res.ErrorMessage = errMessage(results[u].err)
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}
