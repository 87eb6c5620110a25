package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/weir-dev/weir/internal/atomicfile"
)

// ACLFile is the name of the ACL file in a single-node broker's data
// directory.
const ACLFile = "acls.json"

// aclFile is the on-disk form of the ACLs.
type aclFile struct {
	Version int   `json:"version"`
	ACLs    []ACL `json:"acls"`
}

// ACLStore keeps the ACLs of a single-node broker in a file (written whole
// with atomicfile on every change) and serves an immutable Authorizer of
// the current set.
type ACLStore struct {
	path         string
	superUsers   []string
	allowIfNoACL bool

	mu   sync.Mutex // serializes changes (and their file writes)
	acls []ACL      // guarded by mu; never changed in place (authorizers share it)
	cur  atomic.Pointer[Authorizer]
}

// OpenACLStore reads path (missing: no ACLs yet).
func OpenACLStore(path string, superUsers []string, allowIfNoACL bool) (*ACLStore, error) {
	s := &ACLStore{path: path, superUsers: superUsers, allowIfNoACL: allowIfNoACL}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("auth: read ACLs: %w", err)
	default:
		var f aclFile
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("auth: ACL file %s: %w", path, err)
		}
		for i, a := range f.ACLs {
			if err := a.Validate(); err != nil {
				return nil, fmt.Errorf("auth: ACL file %s, entry %d: %w", path, i, err)
			}
		}
		s.acls = f.ACLs
	}
	s.cur.Store(NewAuthorizer(s.acls, superUsers, allowIfNoACL))
	return s, nil
}

// Authorizer returns the authorizer of the current ACLs.
func (s *ACLStore) Authorizer() *Authorizer { return s.cur.Load() }

// List returns the ACLs f selects.
func (s *ACLStore) List(f Filter) []ACL {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ACL
	for _, a := range s.acls {
		if f.Matches(a) {
			out = append(out, a)
		}
	}
	return out
}

// Add adds the valid bindings (an existing one is kept once) and returns,
// for each, nil or why it was refused.
func (s *ACLStore) Add(acls []ACL) ([]error, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	errs := make([]error, len(acls))
	next := slices.Clone(s.acls)
	for i, a := range acls {
		if errs[i] = a.Validate(); errs[i] != nil {
			continue
		}
		if !slices.Contains(next, a) {
			next = append(next, a)
		}
	}
	return errs, s.commit(next)
}

// Delete removes, for each filter, the bindings it selects, and returns
// them (a binding selected by two filters is returned for the first).
func (s *ACLStore) Delete(filters []Filter) ([][]ACL, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]ACL, len(filters))
	next := slices.Clone(s.acls)
	for i, f := range filters {
		next = slices.DeleteFunc(next, func(a ACL) bool {
			if f.Matches(a) {
				out[i] = append(out[i], a)
				return true
			}
			return false
		})
	}
	return out, s.commit(next)
}

// commit writes next and makes it current. Called with mu held.
func (s *ACLStore) commit(next []ACL) error {
	if slices.Equal(next, s.acls) {
		return nil
	}
	b, err := json.MarshalIndent(aclFile{Version: 1, ACLs: next}, "", "  ")
	if err != nil {
		return fmt.Errorf("auth: encode ACLs: %w", err)
	}
	if err := atomicfile.Write(s.path, b); err != nil {
		return fmt.Errorf("auth: write ACLs: %w", err)
	}
	s.acls = next
	s.cur.Store(NewAuthorizer(next, s.superUsers, s.allowIfNoACL))
	return nil
}
