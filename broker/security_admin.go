package broker

// Offline administration of a stopped single-node broker's SCRAM
// credentials and ACLs (weir user and weir acl with --data-dir): the first
// user and the first ACLs of a broker whose every listener needs them.
// Each function takes the data directory's lock, so it refuses to run
// beside a broker serving that directory.

import (
	"fmt"
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/auth"
	"github.com/weir-dev/weir/broker/internal/cluster"
	"github.com/weir-dev/weir/internal/dirlock"
)

// The SCRAM mechanisms.
const (
	SCRAMSHA256 = auth.SCRAMSHA256
	SCRAMSHA512 = auth.SCRAMSHA512
)

// ACL is one ACL binding (Kafka's model; see the auth package).
type ACL = auth.ACL

// ACLFilter selects ACLs.
type ACLFilter = auth.Filter

// SCRAMUser is a user with its SCRAM mechanisms and their iterations.
type SCRAMUser = auth.UserInfo

// withDataDir runs fn with dir locked.
func withDataDir(dir string, fn func(dir string) error) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("broker: data dir: %w", err)
	}
	lock, err := dirlock.Acquire(abs)
	if err != nil {
		return fmt.Errorf("broker: data directory (stop the broker serving it, or go through the broker with --brokers): %w", err)
	}
	defer lock.Release()
	if cluster.IsNodeDir(abs) {
		return fmt.Errorf("broker: %s is a cluster node's data directory: a cluster keeps its users and ACLs in its metadata log, "+
			"not in a node's directory; go through a broker with --brokers instead of --data-dir", abs)
	}
	return fn(abs)
}

// SetSCRAMUser salts and hashes password and stores it as user's
// credential for mech in the data directory dir.
func SetSCRAMUser(dir, user, mech, password string, iterations int) error {
	cred, err := auth.NewCredential(mech, password, iterations)
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	return withDataDir(dir, func(dir string) error {
		s, err := auth.OpenUserStore(filepath.Join(dir, auth.UsersFile))
		if err != nil {
			return err
		}
		errs, err := s.Apply([]auth.Change{{User: user, Mech: mech, Cred: &cred}})
		if err == nil {
			err = errs[0]
		}
		return err
	})
}

// DeleteSCRAMUser deletes user's credential for mech.
func DeleteSCRAMUser(dir, user, mech string) error {
	return withDataDir(dir, func(dir string) error {
		s, err := auth.OpenUserStore(filepath.Join(dir, auth.UsersFile))
		if err != nil {
			return err
		}
		errs, err := s.Apply([]auth.Change{{User: user, Mech: mech}})
		if err == nil && errs[0] != nil {
			err = fmt.Errorf("user %q, %s: %w", user, mech, errs[0])
		}
		return err
	})
}

// ListSCRAMUsers returns the users with SCRAM credentials.
func ListSCRAMUsers(dir string) ([]SCRAMUser, error) {
	var out []SCRAMUser
	err := withDataDir(dir, func(dir string) error {
		s, err := auth.OpenUserStore(filepath.Join(dir, auth.UsersFile))
		if err == nil {
			out = s.List()
		}
		return err
	})
	return out, err
}

// AddACLs adds ACLs to the data directory dir.
func AddACLs(dir string, acls []ACL) error {
	return withDataDir(dir, func(dir string) error {
		s, err := auth.OpenACLStore(filepath.Join(dir, auth.ACLFile), nil, false)
		if err != nil {
			return err
		}
		errs, err := s.Add(acls)
		if err != nil {
			return err
		}
		for _, e := range errs {
			if e != nil {
				return e
			}
		}
		return nil
	})
}

// ListACLs returns the ACLs of dir that f selects.
func ListACLs(dir string, f ACLFilter) ([]ACL, error) {
	var out []ACL
	err := withDataDir(dir, func(dir string) error {
		s, err := auth.OpenACLStore(filepath.Join(dir, auth.ACLFile), nil, false)
		if err == nil {
			out = s.List(f)
		}
		return err
	})
	return out, err
}

// DeleteACLs deletes the ACLs of dir that f selects and returns them.
func DeleteACLs(dir string, f ACLFilter) ([]ACL, error) {
	var out []ACL
	err := withDataDir(dir, func(dir string) error {
		s, err := auth.OpenACLStore(filepath.Join(dir, auth.ACLFile), nil, false)
		if err != nil {
			return err
		}
		del, err := s.Delete([]auth.Filter{f})
		if err == nil {
			out = del[0]
		}
		return err
	})
	return out, err
}

// MatchAnyACL is the filter that selects every ACL.
func MatchAnyACL() ACLFilter {
	return ACLFilter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny,
		Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}
}

// ResourceTypeName names an ACL resource type: TOPIC, GROUP, CLUSTER or
// TRANSACTIONAL_ID.
type ResourceTypeName string

// ParseACL builds an ACL from the names Kafka's tools use (any case):
// resource type, resource name, pattern type (LITERAL, PREFIXED),
// principal, host, operation and permission (ALLOW, DENY); it is
// validated.
func ParseACL(resourceType, name, pattern, principal, host, operation, permission string) (ACL, error) {
	var a ACL
	var err error
	if a.ResourceType, err = kmsg.ParseACLResourceType(resourceType); err != nil {
		return a, fmt.Errorf("broker: resource type %q: %w", resourceType, err)
	}
	if a.PatternType, err = kmsg.ParseACLResourcePatternType(pattern); err != nil {
		return a, fmt.Errorf("broker: pattern type %q: %w", pattern, err)
	}
	if a.Operation, err = kmsg.ParseACLOperation(operation); err != nil {
		return a, fmt.Errorf("broker: operation %q: %w", operation, err)
	}
	if a.Permission, err = kmsg.ParseACLPermissionType(permission); err != nil {
		return a, fmt.Errorf("broker: permission %q: %w", permission, err)
	}
	a.ResourceName, a.Principal, a.Host = name, principal, host
	return a, a.Validate()
}
