package metadata

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"math/rand/v2"
	"strings"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/xdg-go/scram"

	"github.com/weir-dev/weir/broker/internal/auth"
)

// The security commands of the controller scenarios (testdata/controller):
//
//	scram
//	  upsert <user|-> <256|512|N> [iterations=N] [password=P]   (N: a raw mechanism code; -: no name)
//	  delete <user> <256|512|N>
//	create-acls
//	  <TOPIC|GROUP|CLUSTER|TRANSACTIONAL_ID|N> <name> <LITERAL|PREFIXED|N> <principal> <host> <operation> <ALLOW|DENY>
//	delete-acls
//	  <type|ANY> <name|-> <pattern|ANY|MATCH> <principal|-> <host|-> <operation|ANY> <permission|ANY>
//	authorize <principal> <operation> <resource type> <name> [super=User:x] [allow-if-no-acl]
//	                                  (the committed image's ACLs decide)
//	login <user> <256|512> <password>  (a SCRAM exchange against the committed image)
func (h *ctlHarness) runSecurity(td *datadriven.TestData) (string, bool) {
	switch td.Cmd {
	case "scram":
		req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
		for _, line := range strings.Split(strings.TrimSpace(td.Input), "\n") {
			fs := strings.Fields(line)
			kv := map[string]string{}
			for _, f := range fs[3:] {
				k, v, _ := strings.Cut(f, "=")
				kv[k] = v
			}
			code := h.mechCode(fs[2])
			if fs[1] == "-" {
				fs[1] = "" // the empty user name
			}
			switch fs[0] {
			case "upsert":
				u := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
				u.Name, u.Mechanism = fs[1], code
				u.Iterations = int32(h.int(cmpOr(kv["iterations"], "4096")))
				u.Salt = []byte("salt-of-" + fs[1])
				u.SaltedPassword = saltPassword(code, cmpOr(kv["password"], "pw-"+fs[1]), u.Salt, int(u.Iterations))
				req.Upsertions = append(req.Upsertions, u)
			case "delete":
				d := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
				d.Name, d.Mechanism = fs[1], code
				req.Deletions = append(req.Deletions, d)
			default:
				h.t.Fatalf("%s: scram: unknown line %q", td.Pos, line)
			}
		}
		records, resp, err := h.c.AlterUserSCRAMCredentials(req)
		if err != nil {
			return h.commit(td, nil, err, ""), true
		}
		var b strings.Builder
		for _, r := range resp.Results {
			fmt.Fprintf(&b, "reply %s err=%s%s\n", r.User, errName(r.ErrorCode), msgOf(r.ErrorMessage))
		}
		return h.commit(td, records, nil, b.String()), true

	case "create-acls":
		req := kmsg.NewPtrCreateACLsRequest()
		for _, line := range strings.Split(strings.TrimSpace(td.Input), "\n") {
			fs := strings.Fields(line)
			c := kmsg.NewCreateACLsRequestCreation()
			c.ResourceType = kmsg.ACLResourceType(h.enum(fs[0], func(s string) (int8, error) { v, err := kmsg.ParseACLResourceType(s); return int8(v), err }))
			c.ResourceName = fs[1]
			c.ResourcePatternType = kmsg.ACLResourcePatternType(h.enum(fs[2], func(s string) (int8, error) { v, err := kmsg.ParseACLResourcePatternType(s); return int8(v), err }))
			c.Principal, c.Host = fs[3], fs[4]
			c.Operation = kmsg.ACLOperation(h.enum(fs[5], func(s string) (int8, error) { v, err := kmsg.ParseACLOperation(s); return int8(v), err }))
			c.PermissionType = kmsg.ACLPermissionType(h.enum(fs[6], func(s string) (int8, error) { v, err := kmsg.ParseACLPermissionType(s); return int8(v), err }))
			req.Creations = append(req.Creations, c)
		}
		records, resp, err := h.c.CreateACLs(req)
		if err != nil {
			return h.commit(td, nil, err, ""), true
		}
		var b strings.Builder
		for i, r := range resp.Results {
			fmt.Fprintf(&b, "reply %d err=%s%s\n", i, errName(r.ErrorCode), msgOf(r.ErrorMessage))
		}
		return h.commit(td, records, nil, b.String()), true

	case "delete-acls":
		req := kmsg.NewPtrDeleteACLsRequest()
		opt := func(s string) *string {
			if s == "-" {
				return nil
			}
			return &s
		}
		for _, line := range strings.Split(strings.TrimSpace(td.Input), "\n") {
			fs := strings.Fields(line)
			f := kmsg.NewDeleteACLsRequestFilter()
			f.ResourceType = kmsg.ACLResourceType(h.enum(fs[0], func(s string) (int8, error) { v, err := kmsg.ParseACLResourceType(s); return int8(v), err }))
			f.ResourceName = opt(fs[1])
			f.ResourcePatternType = kmsg.ACLResourcePatternType(h.enum(fs[2], func(s string) (int8, error) { v, err := kmsg.ParseACLResourcePatternType(s); return int8(v), err }))
			f.Principal, f.Host = opt(fs[3]), opt(fs[4])
			f.Operation = kmsg.ACLOperation(h.enum(fs[5], func(s string) (int8, error) { v, err := kmsg.ParseACLOperation(s); return int8(v), err }))
			f.PermissionType = kmsg.ACLPermissionType(h.enum(fs[6], func(s string) (int8, error) { v, err := kmsg.ParseACLPermissionType(s); return int8(v), err }))
			req.Filters = append(req.Filters, f)
		}
		records, resp, err := h.c.DeleteACLs(req)
		if err != nil {
			return h.commit(td, nil, err, ""), true
		}
		var b strings.Builder
		for i, r := range resp.Results {
			fmt.Fprintf(&b, "reply %d err=%s%s matched=%d\n", i, errName(r.ErrorCode), msgOf(r.ErrorMessage), len(r.MatchingACLs))
		}
		return h.commit(td, records, nil, b.String()), true

	case "authorize":
		var super []string
		if s := tdArg(td, "super", ""); s != "" {
			super = []string{s}
		}
		az := auth.NewAuthorizer(h.committed.ACLs(), super, td.HasArg("allow-if-no-acl"))
		principal, opName, rtName, name := td.CmdArgs[0].Key, td.CmdArgs[1].Key, td.CmdArgs[2].Key, td.CmdArgs[3].Key
		op, err := kmsg.ParseACLOperation(opName)
		if err != nil {
			h.t.Fatal(err)
		}
		rt, err := kmsg.ParseACLResourceType(rtName)
		if err != nil {
			h.t.Fatal(err)
		}
		if az.Authorized(principal, "127.0.0.1", op, rt, name) {
			return "allowed", true
		}
		return "denied", true

	case "login":
		user, mech, pw := td.CmdArgs[0].Key, scramMechanism(h.mechCode(td.CmdArgs[1].Key)), td.CmdArgs[2].Key
		return scramLogin(h.committed, user, mech, pw), true
	}
	return "", false
}

// mechCode reads 256, 512 or a raw mechanism code.
func (h *ctlHarness) mechCode(s string) int8 {
	switch s {
	case "256":
		return 1
	case "512":
		return 2
	}
	return int8(h.int(s))
}

// enum parses a Kafka enum name, or a raw number.
func (h *ctlHarness) enum(s string, parse func(string) (int8, error)) int8 {
	h.t.Helper()
	if v, err := parse(s); err == nil {
		return v
	}
	return int8(h.int(s))
}

// saltPassword salts pw as a client does for AlterUserScramCredentials.
func saltPassword(code int8, pw string, salt []byte, iterations int) []byte {
	var h func() hash.Hash = sha512.New
	if code == 1 {
		h = sha256.New
	}
	out, err := pbkdf2.Key(h, pw, salt, iterations, h().Size())
	if err != nil {
		panic(err)
	}
	return out
}

// imageCredentials serves an image's SCRAM credentials to an exchange.
type imageCredentials struct{ im *Image }

func (c imageCredentials) Lookup(user, mech string) (auth.Credential, bool) {
	return c.im.SCRAMCredential(user, mech)
}
func (c imageCredentials) List() []auth.UserInfo { return c.im.SCRAMUsers() }

// scramLogin runs a client's SCRAM exchange (with the xdg-go client)
// against the image's credentials and says how it ended.
func scramLogin(im *Image, user, mech, pw string) string {
	x, err := auth.NewSCRAMExchange(imageCredentials{im}, mech)
	if err != nil {
		return "error: " + err.Error()
	}
	gen := scram.SHA512
	if mech == auth.SCRAMSHA256 {
		gen = scram.SHA256
	}
	cl, err := gen.NewClient(user, pw, "")
	if err != nil {
		return "error: " + err.Error()
	}
	cc := cl.NewConversation()
	msg, err := cc.Step("")
	for err == nil && !x.Done() {
		var reply string
		if reply, err = x.Step(msg); err == nil && !x.Done() {
			msg, err = cc.Step(reply)
		}
	}
	if err != nil || !x.Valid() {
		return "refused"
	}
	return "authenticated as " + x.Username()
}

func fmtSecurityRecord(r Record) (string, bool) {
	switch r := r.(type) {
	case UserSCRAMCredentialRecord:
		return fmt.Sprintf("UserSCRAMCredential %s %s iterations=%d", r.User, r.Mechanism, r.Credential.Iterations), true
	case RemoveUserSCRAMCredentialRecord:
		return fmt.Sprintf("RemoveUserSCRAMCredential %s %s", r.User, r.Mechanism), true
	case AccessControlEntryRecord:
		return "AccessControlEntry " + r.ACL.String(), true
	case RemoveAccessControlEntryRecord:
		return "RemoveAccessControlEntry " + r.ACL.String(), true
	}
	return "", false
}

func showSecurity(im *Image) string {
	var b strings.Builder
	for _, u := range im.SCRAMUsers() {
		for _, m := range []string{auth.SCRAMSHA256, auth.SCRAMSHA512} {
			if it, ok := u.Mechanisms[m]; ok {
				fmt.Fprintf(&b, "scram %s %s iterations=%d\n", u.Name, m, it)
			}
		}
	}
	for _, a := range im.ACLs() {
		fmt.Fprintf(&b, "acl %s\n", a)
	}
	return b.String()
}

// randomSecurityRecord returns a random security record (codec tests).
func randomSecurityRecord(r *rand.Rand, str func() string) Record {
	acl := func() auth.ACL {
		e := func() int8 { return int8(r.IntN(256) - 128) }
		return auth.ACL{ResourceType: auth.ResourceType(e()), ResourceName: str(), PatternType: auth.PatternType(e()),
			Principal: str(), Host: str(), Operation: auth.Operation(e()), Permission: auth.Permission(e())}
	}
	switch r.IntN(4) {
	case 0:
		return UserSCRAMCredentialRecord{User: str(), Mechanism: str(), Credential: auth.Credential{
			Salt: []byte(str()), StoredKey: []byte(str()), ServerKey: []byte(str()), Iterations: r.IntN(1 << 20)}}
	case 1:
		return RemoveUserSCRAMCredentialRecord{User: str(), Mechanism: str()}
	case 2:
		return AccessControlEntryRecord{ACL: acl()}
	default:
		return RemoveAccessControlEntryRecord{ACL: acl()}
	}
}
