package auth

// Credentials is where SCRAM credentials are looked up: the credentials
// file of a single-node broker (UserStore), or the metadata image of a
// cluster node, where they arrive as metadata records.
type Credentials interface {
	// Lookup returns user's credential for mech.
	Lookup(user, mech string) (Credential, bool)
	// List returns every user with a credential, sorted by name.
	List() []UserInfo
}

// ACLSource is where the authorizer's ACLs come from: the ACL file of a
// single-node broker (ACLStore), or the metadata image of a cluster node.
type ACLSource interface {
	// Authorizer returns an authorizer of the current ACLs.
	Authorizer() *Authorizer
	// List returns the current ACLs f selects.
	List(f Filter) []ACL
}

// Readier is implemented by a Credentials or ACLSource that may not hold
// its data yet (a cluster node replaying its metadata log): Ready says
// why not, nil once it does. Until then nothing is decided from it.
type Readier interface {
	Ready() error
}

// NotReady returns the error of src's Ready when src is a Readier, else nil.
func NotReady(src any) error {
	if r, ok := src.(Readier); ok {
		return r.Ready()
	}
	return nil
}

var (
	_ Credentials = (*UserStore)(nil)
	_ ACLSource   = (*ACLStore)(nil)
)
