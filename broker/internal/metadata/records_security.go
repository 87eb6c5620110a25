package metadata

// The security records: SCRAM credentials and ACLs, kept in the metadata
// log so that every broker of a cluster authenticates and authorizes
// alike (as Kafka's UserScramCredentialsRecord and AccessControlEntryRecord
// do). Their type tags start at 32, apart from the others.

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/weir-dev/weir/broker/internal/auth"
)

// The security record types.
const (
	TypeUserSCRAMCredential       RecordType = 32
	TypeRemoveUserSCRAMCredential RecordType = 33
	TypeAccessControlEntry        RecordType = 34
	TypeRemoveAccessControlEntry  RecordType = 35
)

const firstSecurityType, lastSecurityType = TypeUserSCRAMCredential, TypeRemoveAccessControlEntry

// UserSCRAMCredentialRecord sets user's SCRAM credential for Mechanism
// (SCRAM-SHA-256 or SCRAM-SHA-512): the salt and the keys derived from the
// salted password, never the password. Version 0.
type UserSCRAMCredentialRecord struct {
	User       string
	Mechanism  string
	Credential auth.Credential
}

// RemoveUserSCRAMCredentialRecord deletes user's credential for Mechanism,
// which must exist. Version 0.
type RemoveUserSCRAMCredentialRecord struct {
	User      string
	Mechanism string
}

// AccessControlEntryRecord adds an ACL binding, which must be valid and
// not present yet. Version 0.
type AccessControlEntryRecord struct {
	ACL auth.ACL
}

// RemoveAccessControlEntryRecord removes an ACL binding, which must be
// present. Version 0.
type RemoveAccessControlEntryRecord struct {
	ACL auth.ACL
}

func (UserSCRAMCredentialRecord) Type() RecordType       { return TypeUserSCRAMCredential }
func (RemoveUserSCRAMCredentialRecord) Type() RecordType { return TypeRemoveUserSCRAMCredential }
func (AccessControlEntryRecord) Type() RecordType        { return TypeAccessControlEntry }
func (RemoveAccessControlEntryRecord) Type() RecordType  { return TypeRemoveAccessControlEntry }

func (UserSCRAMCredentialRecord) version() byte       { return 0 }
func (RemoveUserSCRAMCredentialRecord) version() byte { return 0 }
func (AccessControlEntryRecord) version() byte        { return 0 }
func (RemoveAccessControlEntryRecord) version() byte  { return 0 }

func (r UserSCRAMCredentialRecord) appendPayload(b []byte) []byte {
	b = appendString(b, r.User)
	b = appendString(b, r.Mechanism)
	b = appendString(b, string(r.Credential.Salt))
	b = appendString(b, string(r.Credential.StoredKey))
	b = appendString(b, string(r.Credential.ServerKey))
	return appendVarint(b, int64(r.Credential.Iterations))
}

func (r RemoveUserSCRAMCredentialRecord) appendPayload(b []byte) []byte {
	return appendString(appendString(b, r.User), r.Mechanism)
}

func appendACL(b []byte, a auth.ACL) []byte {
	b = appendVarint(b, int64(a.ResourceType))
	b = appendString(b, a.ResourceName)
	b = appendVarint(b, int64(a.PatternType))
	b = appendString(b, a.Principal)
	b = appendString(b, a.Host)
	b = appendVarint(b, int64(a.Operation))
	return appendVarint(b, int64(a.Permission))
}

func (r AccessControlEntryRecord) appendPayload(b []byte) []byte       { return appendACL(b, r.ACL) }
func (r RemoveAccessControlEntryRecord) appendPayload(b []byte) []byte { return appendACL(b, r.ACL) }

// securityRecordName names a security record type.
func securityRecordName(t RecordType) (string, bool) {
	switch t {
	case TypeUserSCRAMCredential:
		return "UserSCRAMCredential", true
	case TypeRemoveUserSCRAMCredential:
		return "RemoveUserSCRAMCredential", true
	case TypeAccessControlEntry:
		return "AccessControlEntry", true
	case TypeRemoveAccessControlEntry:
		return "RemoveAccessControlEntry", true
	}
	return "", false
}

func isSecurityRecord(t RecordType) bool { return t >= firstSecurityType && t <= lastSecurityType }

// int8 reads a varint that must fit an int8 (Kafka's enum values).
func (d *decoder) int8(what string) int8 {
	v := d.varint(what)
	if d.err == nil && (v < -128 || v > 127) {
		d.fail("%s %d overflows int8", what, v)
	}
	return int8(v)
}

func (d *decoder) acl() auth.ACL {
	var a auth.ACL
	a.ResourceType = auth.ResourceType(d.int8("resource type"))
	a.ResourceName = d.string("resource name")
	a.PatternType = auth.PatternType(d.int8("pattern type"))
	a.Principal = d.string("principal")
	a.Host = d.string("host")
	a.Operation = auth.Operation(d.int8("operation"))
	a.Permission = auth.Permission(d.int8("permission"))
	return a
}

// decodeSecurityRecord decodes a security record's payload, which it must
// consume whole.
func decodeSecurityRecord(typ RecordType, ver byte, payload []byte) (Record, error) {
	if ver != 0 {
		return nil, unknownf("%s version %d is unknown (this Weir reads version 0)", typ, ver)
	}
	d := &decoder{b: payload}
	var r Record
	switch typ {
	case TypeUserSCRAMCredential:
		var x UserSCRAMCredentialRecord
		x.User = d.string("user")
		x.Mechanism = d.string("mechanism")
		x.Credential.Salt = []byte(d.string("salt"))
		x.Credential.StoredKey = []byte(d.string("stored key"))
		x.Credential.ServerKey = []byte(d.string("server key"))
		it := d.varint("iterations")
		if d.err == nil && (it < 0 || it > 1<<31-1) {
			d.fail("iterations %d out of range", it)
		}
		x.Credential.Iterations = int(it)
		r = x
	case TypeRemoveUserSCRAMCredential:
		r = RemoveUserSCRAMCredentialRecord{User: d.string("user"), Mechanism: d.string("mechanism")}
	case TypeAccessControlEntry:
		r = AccessControlEntryRecord{ACL: d.acl()}
	case TypeRemoveAccessControlEntry:
		r = RemoveAccessControlEntryRecord{ACL: d.acl()}
	default:
		return nil, unknownf("unknown record type %d", uint8(typ))
	}
	if d.err == nil && d.remaining() != 0 {
		d.fail("%d trailing bytes", d.remaining())
	}
	if d.err != nil {
		return nil, fmt.Errorf("%s: %w", typ, d.err)
	}
	return r, nil
}

// securityImage is the image's SCRAM credentials and ACLs.
//
// NB: credential maps and the ACL slice are never changed in place (a
// change stores a new map or slice), so clones share them.
type securityImage struct {
	// scram: user -> mechanism -> credential.
	scram map[string]map[string]auth.Credential
	// acls in the order they were added.
	acls []auth.ACL
}

func (s securityImage) clone() securityImage {
	return securityImage{scram: maps.Clone(s.scram), acls: s.acls}
}

// records lists the credentials (by user, then mechanism) and the ACLs
// (in order) as records.
func (s securityImage) records() []Record {
	var out []Record
	for _, u := range slices.Sorted(maps.Keys(s.scram)) {
		for _, m := range slices.Sorted(maps.Keys(s.scram[u])) {
			out = append(out, UserSCRAMCredentialRecord{User: u, Mechanism: m, Credential: s.scram[u][m]})
		}
	}
	for _, a := range s.acls {
		out = append(out, AccessControlEntryRecord{ACL: a})
	}
	return out
}

func checkMechanism(m string) error {
	if m != auth.SCRAMSHA256 && m != auth.SCRAMSHA512 {
		return invalidf("SCRAM mechanism %q: want %s or %s", m, auth.SCRAMSHA256, auth.SCRAMSHA512)
	}
	return nil
}

// security applies a security record.
func (a *applying) security(r Record) error {
	im := a.im
	old := im.sec
	switch r := r.(type) {
	case UserSCRAMCredentialRecord:
		if r.User == "" {
			return invalidf("SCRAM credential of the empty user name")
		}
		if err := checkMechanism(r.Mechanism); err != nil {
			return err
		}
		c := r.Credential
		if len(c.Salt) == 0 || len(c.StoredKey) == 0 || len(c.ServerKey) == 0 {
			return invalidf("SCRAM credential of user %q, %s: empty salt or key", r.User, r.Mechanism)
		}
		if c.Iterations < auth.MinIterations || c.Iterations > auth.MaxIterations {
			return invalidf("SCRAM credential of user %q, %s: %d iterations outside %d..%d",
				r.User, r.Mechanism, c.Iterations, auth.MinIterations, auth.MaxIterations)
		}
		next := old.clone()
		if next.scram == nil {
			next.scram = map[string]map[string]auth.Credential{}
		}
		ms := maps.Clone(next.scram[r.User])
		if ms == nil {
			ms = map[string]auth.Credential{}
		}
		ms[r.Mechanism] = c
		next.scram[r.User] = ms
		im.sec = next
	case RemoveUserSCRAMCredentialRecord:
		if err := checkMechanism(r.Mechanism); err != nil {
			return err
		}
		if _, ok := old.scram[r.User][r.Mechanism]; !ok {
			return invalidf("removal of a missing SCRAM credential: user %q, %s", r.User, r.Mechanism)
		}
		next := old.clone()
		ms := maps.Clone(next.scram[r.User])
		delete(ms, r.Mechanism)
		if len(ms) == 0 {
			delete(next.scram, r.User)
		} else {
			next.scram[r.User] = ms
		}
		im.sec = next
	case AccessControlEntryRecord:
		if err := r.ACL.Validate(); err != nil {
			return invalidf("%v", err)
		}
		if slices.Contains(old.acls, r.ACL) {
			return invalidf("ACL %s exists", r.ACL)
		}
		next := old.clone()
		next.acls = append(slices.Clip(old.acls), r.ACL)
		im.sec = next
	case RemoveAccessControlEntryRecord:
		i := slices.Index(old.acls, r.ACL)
		if i < 0 {
			return invalidf("removal of a missing ACL %s", r.ACL)
		}
		next := old.clone()
		next.acls = slices.Delete(slices.Clone(old.acls), i, i+1)
		im.sec = next
	default:
		return invalidf("unhandled record type %s", r.Type())
	}
	a.undo = append(a.undo, func() { im.sec = old })
	return nil
}

// SCRAMCredential returns user's credential for mech. It implements
// auth.Credentials with SCRAMUsers (see the cluster package).
func (im *Image) SCRAMCredential(user, mech string) (auth.Credential, bool) {
	c, ok := im.sec.scram[user][mech]
	return c, ok
}

// SCRAMUsers returns every user with a SCRAM credential, by name, with
// its mechanisms and their iterations.
func (im *Image) SCRAMUsers() []auth.UserInfo {
	out := make([]auth.UserInfo, 0, len(im.sec.scram))
	for u, ms := range im.sec.scram {
		ui := auth.UserInfo{Name: u, Mechanisms: map[string]int{}}
		for m, c := range ms {
			ui.Mechanisms[m] = c.Iterations
		}
		out = append(out, ui)
	}
	slices.SortFunc(out, func(a, b auth.UserInfo) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// ACLs returns the ACL bindings, in the order they were added. The caller
// must not change the slice.
func (im *Image) ACLs() []auth.ACL { return im.sec.acls }
