package protocol

// Authorization: one rule per API key, applied by dispatch when the
// authorizer is on (Security.ACLs set). A rule checks what Kafka checks
// for that API: it may answer the whole request at once (every resource
// denied), or take the denied resources out of the request and return a
// post function that puts them back into the handler's response with
// their *_AUTHORIZATION_FAILED codes. TestEveryAPIHasAnAuthRule checks
// that every registered API key has a rule.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/auth"
)

// authz is the authorizer as one request's rule sees it.
type authz struct {
	s         *Server
	a         *auth.Authorizer
	principal string
	host      string
}

// allowed reports whether the request's principal may perform op on the
// resource, counting refusals.
func (z *authz) allowed(op auth.Operation, rt auth.ResourceType, name string) bool {
	if z.a.Authorized(z.principal, z.host, op, rt, name) {
		return true
	}
	z.s.sec.denied.Inc()
	return false
}

// authRule is the authorization of one API.
type authRule struct {
	// check, nil for APIs that need no authorization (ApiVersions, SASL),
	// runs before the handler: a non-nil deny is the answer (the handler
	// does not run); a non-nil post is applied to the handler's response.
	check func(z *authz, r *Request) (deny kmsg.Response, post func(kmsg.Response))
}

// authRules are the rules by API key.
var authRules = map[int16]authRule{
	kmsg.ApiVersions.Int16():      {},
	kmsg.SASLHandshake.Int16():    {},
	kmsg.SASLAuthenticate.Int16(): {},
}
