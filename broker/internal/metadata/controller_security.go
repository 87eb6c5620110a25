package metadata

// The controller's security requests: AlterUserScramCredentials,
// CreateAcls and DeleteAcls, forwarded by whichever broker received them.
// They are decided here, on the image, and become security records
// (records_security.go) that every broker applies.

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/auth"
)

// scramMechanism is the SCRAM mechanism of a KIP-554 wire code, or "".
func scramMechanism(code int8) string {
	switch code {
	case 1:
		return auth.SCRAMSHA256
	case 2:
		return auth.SCRAMSHA512
	}
	return ""
}

// AlterUserSCRAMCredentials upserts (from the client's salt and salted
// password) and deletes users' SCRAM credentials. A user named twice for
// one mechanism, an unknown mechanism, iterations outside 4096..16384 or
// the deletion of a missing credential refuse that user's changes, and
// only that user's; the changes of the others are one entry.
func (c *Controller) AlterUserSCRAMCredentials(req *kmsg.AlterUserSCRAMCredentialsRequest) ([]Record, *kmsg.AlterUserSCRAMCredentialsResponse, error) {
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	var order []string
	refused := map[string]*apiError{}
	planned := map[string][]Record{}
	note := func(user string) {
		if _, ok := planned[user]; !ok {
			planned[user] = nil
			order = append(order, user)
		}
	}
	fail := func(user string, e *apiError) {
		if refused[user] == nil {
			refused[user] = e
		}
	}
	seen := map[[2]string]bool{}
	check := func(user string, code int8) (string, bool) {
		mech := scramMechanism(code)
		switch {
		case user == "":
			fail(user, refuse(kerr.UnacceptableCredential, "empty user name"))
		case mech == "":
			fail(user, refuse(kerr.UnsupportedSaslMechanism, "unknown SCRAM mechanism %d", code))
		case seen[[2]string{user, mech}]:
			fail(user, refuse(kerr.DuplicateResource, "user %q, %s altered twice", user, mech))
		default:
			seen[[2]string{user, mech}] = true
			return mech, true
		}
		return "", false
	}
	for _, d := range req.Deletions {
		note(d.Name)
		mech, ok := check(d.Name, d.Mechanism)
		if !ok {
			continue
		}
		if _, has := c.img.SCRAMCredential(d.Name, mech); !has {
			fail(d.Name, refuse(kerr.ResourceNotFound, "user %q has no %s credential", d.Name, mech))
			continue
		}
		planned[d.Name] = append(planned[d.Name], RemoveUserSCRAMCredentialRecord{User: d.Name, Mechanism: mech})
	}
	for _, u := range req.Upsertions {
		note(u.Name)
		mech, ok := check(u.Name, u.Mechanism)
		if !ok {
			continue
		}
		cred, err := auth.CredentialFromSalted(mech, u.Salt, u.SaltedPassword, int(u.Iterations))
		if err != nil {
			fail(u.Name, refuse(kerr.UnacceptableCredential, "%v", err))
			continue
		}
		planned[u.Name] = append(planned[u.Name], UserSCRAMCredentialRecord{User: u.Name, Mechanism: mech, Credential: cred})
	}
	var out []Record
	for _, user := range order {
		res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		res.User = user
		if e := refused[user]; e != nil {
			res.ErrorCode, res.ErrorMessage = e.err.Code, kmsg.StringPtr(e.msg)
		} else if err := c.emit(&out, planned[user]...); err != nil {
			return nil, nil, err
		}
		resp.Results = append(resp.Results, res)
	}
	return out, resp, nil
}

// CreateACLs adds the bindings of req: each is validated on its own (an
// invalid one is INVALID_REQUEST with the reason); one that exists already
// succeeds without a record. The bindings added are one entry.
func (c *Controller) CreateACLs(req *kmsg.CreateACLsRequest) ([]Record, *kmsg.CreateACLsResponse, error) {
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	var out []Record
	for _, cr := range req.Creations {
		a := auth.ACL{ResourceType: cr.ResourceType, ResourceName: cr.ResourceName, PatternType: cr.ResourcePatternType,
			Principal: cr.Principal, Host: cr.Host, Operation: cr.Operation, Permission: cr.PermissionType}
		res := kmsg.NewCreateACLsResponseResult()
		if err := a.Validate(); err != nil {
			res.ErrorCode, res.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr(err.Error())
		} else if !slices.Contains(c.img.ACLs(), a) {
			if err := c.emit(&out, AccessControlEntryRecord{ACL: a}); err != nil {
				return nil, nil, err
			}
		}
		resp.Results = append(resp.Results, res)
	}
	return out, resp, nil
}

// DeleteACLs removes, for each filter of req, the bindings it selects and
// lists them in its result (a binding two filters select is listed for
// the first). A filter with unknown enum values is INVALID_REQUEST. The
// removals are one entry.
func (c *Controller) DeleteACLs(req *kmsg.DeleteACLsRequest) ([]Record, *kmsg.DeleteACLsResponse, error) {
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	var out []Record
	for _, rf := range req.Filters {
		f := auth.Filter{ResourceType: rf.ResourceType, ResourceName: rf.ResourceName, PatternType: rf.ResourcePatternType,
			Principal: rf.Principal, Host: rf.Host, Operation: rf.Operation, Permission: rf.PermissionType}
		res := kmsg.NewDeleteACLsResponseResult()
		if err := f.Validate(); err != nil {
			res.ErrorCode, res.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr(err.Error())
			resp.Results = append(resp.Results, res)
			continue
		}
		var records []Record
		for _, a := range c.img.ACLs() {
			if !f.Matches(a) {
				continue
			}
			records = append(records, RemoveAccessControlEntryRecord{ACL: a})
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType, m.ResourceName, m.ResourcePatternType = a.ResourceType, a.ResourceName, a.PatternType
			m.Principal, m.Host, m.Operation, m.PermissionType = a.Principal, a.Host, a.Operation, a.Permission
			res.MatchingACLs = append(res.MatchingACLs, m)
		}
		if err := c.emit(&out, records...); err != nil {
			return nil, nil, fmt.Errorf("metadata: DeleteAcls: %w", err)
		}
		resp.Results = append(resp.Results, res)
	}
	return out, resp, nil
}
