package protocol

// DescribeUserScramCredentials, version 0: each user's SCRAM mechanisms
// and iteration counts (never salts or keys). No users named: every user.
// Answers RESOURCE_NOT_FOUND for a named user without credentials. In
// cluster mode the credentials are those of the metadata image.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/auth"
)

func init() { register(kmsg.DescribeUserSCRAMCredentials, 0, 0, handleDescribeUserSCRAM) }

// scramMechCode is the wire code of a SCRAM mechanism (KIP-554).
func scramMechCode(mech string) int8 {
	switch mech {
	case auth.SCRAMSHA256:
		return 1
	case auth.SCRAMSHA512:
		return 2
	}
	return 0
}

// scramMechName is the mechanism of a wire code, or "".
func scramMechName(code int8) string {
	switch code {
	case 1:
		return auth.SCRAMSHA256
	case 2:
		return auth.SCRAMSHA512
	}
	return ""
}

func handleDescribeUserSCRAM(_ context.Context, s *Server, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DescribeUserSCRAMCredentialsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	store := s.cfg.Security.SCRAM
	if store == nil {
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		resp.ErrorMessage = errMessage(errorf("SCRAM credentials are not kept by this broker (cluster mode)"))
		return resp, nil
	}
	users := store.List()
	byName := map[string]auth.UserInfo{}
	for _, u := range users {
		byName[u.Name] = u
	}
	result := func(u auth.UserInfo) kmsg.DescribeUserSCRAMCredentialsResponseResult {
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User = u.Name
		for _, m := range []string{auth.SCRAMSHA256, auth.SCRAMSHA512} {
			if it, ok := u.Mechanisms[m]; ok {
				ci := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
				ci.Mechanism, ci.Iterations = scramMechCode(m), int32(it)
				res.CredentialInfos = append(res.CredentialInfos, ci)
			}
		}
		return res
	}
	if len(req.Users) == 0 {
		for _, u := range users {
			resp.Results = append(resp.Results, result(u))
		}
		return resp, nil
	}
	seen := map[string]int{}
	for _, ru := range req.Users {
		seen[ru.Name]++
	}
	for _, ru := range req.Users {
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User = ru.Name
		u, ok := byName[ru.Name]
		switch {
		case seen[ru.Name] > 1:
			res.ErrorCode = kerr.DuplicateResource.Code
			res.ErrorMessage = errMessage(fmt.Errorf("user %q named more than once", ru.Name))
		case !ok:
			res.ErrorCode = kerr.ResourceNotFound.Code
			res.ErrorMessage = errMessage(fmt.Errorf("no SCRAM credentials for user %q", ru.Name))
		default:
			res = result(u)
		}
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}
