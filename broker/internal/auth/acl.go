// Package auth holds Weir's security model: Kafka's ACLs and the pure
// authorizer that evaluates them, and the stores of SASL credentials (PLAIN
// from a file, SCRAM salted and hashed in the data directory).
//
// The authorizer is data in, decision out: no I/O, no clock, no locks (the
// stores snapshot their ACLs into an immutable Authorizer on every change),
// so it is tested as tables (acl_test.go).
package auth

import (
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The kmsg enums are Kafka's wire values; the ACL model uses them as they are.
type (
	// ResourceType is TOPIC, GROUP, CLUSTER or TRANSACTIONAL_ID.
	ResourceType = kmsg.ACLResourceType
	// PatternType is LITERAL or PREFIXED in a binding; filters may also
	// say ANY or MATCH.
	PatternType = kmsg.ACLResourcePatternType
	// Operation is READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE,
	// CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE or
	// ALL.
	Operation = kmsg.ACLOperation
	// Permission is ALLOW or DENY.
	Permission = kmsg.ACLPermissionType
)

// Wildcards of Kafka's model.
const (
	// WildcardResource is a literal resource name that matches every name.
	WildcardResource = "*"
	// WildcardPrincipal matches every principal.
	WildcardPrincipal = "User:*"
	// WildcardHost matches every host.
	WildcardHost = "*"
	// ClusterName is the one name of the CLUSTER resource.
	ClusterName = "kafka-cluster"
	// Anonymous is the principal of a connection that did not authenticate.
	Anonymous = "User:ANONYMOUS"
)

// ACL is one binding: Principal from Host may (ALLOW) or may not (DENY)
// perform Operation on the resources of ResourceType named by
// ResourceName under PatternType.
type ACL struct {
	ResourceType ResourceType `json:"resource_type"`
	ResourceName string       `json:"resource_name"`
	PatternType  PatternType  `json:"pattern_type"`
	Principal    string       `json:"principal"`
	Host         string       `json:"host"`
	Operation    Operation    `json:"operation"`
	Permission   Permission   `json:"permission"`
}

func (a ACL) String() string {
	return fmt.Sprintf("%s %s from %s %s on %s:%s:%s", a.Principal, a.Permission, a.Host, a.Operation,
		a.ResourceType, a.PatternType, a.ResourceName)
}

// Validate reports what makes a an invalid binding (Kafka's
// INVALID_REQUEST cases): unknown or filter-only enum values, a principal
// without its type, an empty name, a prefixed wildcard, a cluster resource
// not named kafka-cluster.
func (a ACL) Validate() error {
	var errs []error
	switch a.ResourceType {
	case kmsg.ACLResourceTypeTopic, kmsg.ACLResourceTypeGroup, kmsg.ACLResourceTypeCluster, kmsg.ACLResourceTypeTransactionalId:
	default:
		errs = append(errs, fmt.Errorf("resource type %s: want TOPIC, GROUP, CLUSTER or TRANSACTIONAL_ID", a.ResourceType))
	}
	switch a.PatternType {
	case kmsg.ACLResourcePatternTypeLiteral:
	case kmsg.ACLResourcePatternTypePrefixed:
		if a.ResourceName == WildcardResource {
			errs = append(errs, errors.New(`a PREFIXED pattern may not be "*" (use LITERAL "*" for every name)`))
		}
	default:
		errs = append(errs, fmt.Errorf("pattern type %s: want LITERAL or PREFIXED", a.PatternType))
	}
	if a.ResourceName == "" {
		errs = append(errs, errors.New("empty resource name"))
	}
	if a.ResourceType == kmsg.ACLResourceTypeCluster && a.ResourceName != ClusterName {
		errs = append(errs, fmt.Errorf("cluster resource %q: the cluster is named %q", a.ResourceName, ClusterName))
	}
	if typ, name, ok := strings.Cut(a.Principal, ":"); !ok || typ == "" || name == "" {
		errs = append(errs, fmt.Errorf("principal %q: want Type:name, e.g. User:alice", a.Principal))
	}
	if a.Host == "" {
		errs = append(errs, errors.New(`empty host (use "*" for every host)`))
	}
	switch a.Operation {
	case kmsg.ACLOperationAll, kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate,
		kmsg.ACLOperationDelete, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe, kmsg.ACLOperationClusterAction,
		kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs, kmsg.ACLOperationIdempotentWrite:
	default:
		errs = append(errs, fmt.Errorf("operation %s is not one an ACL may name", a.Operation))
	}
	switch a.Permission {
	case kmsg.ACLPermissionTypeAllow, kmsg.ACLPermissionTypeDeny:
	default:
		errs = append(errs, fmt.Errorf("permission %s: want ALLOW or DENY", a.Permission))
	}
	if len(errs) > 0 {
		return fmt.Errorf("auth: ACL %s: %w", a, errors.Join(errs...))
	}
	return nil
}

// Filter selects ACLs, as DescribeAcls and DeleteAcls requests do: a nil
// string matches anything, as do the ANY enum values; the MATCH pattern
// type selects the bindings that would apply to the named resource
// (literal, wildcard and prefixes of it).
type Filter struct {
	ResourceType ResourceType
	ResourceName *string
	PatternType  PatternType
	Principal    *string
	Host         *string
	Operation    Operation
	Permission   Permission
}

// Matches reports whether f selects a.
func (f Filter) Matches(a ACL) bool {
	if f.ResourceType != kmsg.ACLResourceTypeAny && f.ResourceType != a.ResourceType {
		return false
	}
	switch f.PatternType {
	case kmsg.ACLResourcePatternTypeAny:
		if f.ResourceName != nil && *f.ResourceName != a.ResourceName {
			return false
		}
	case kmsg.ACLResourcePatternTypeMatch:
		if f.ResourceName != nil && !patternCovers(a, *f.ResourceName) {
			return false
		}
	default:
		if f.PatternType != a.PatternType || f.ResourceName != nil && *f.ResourceName != a.ResourceName {
			return false
		}
	}
	if f.Principal != nil && *f.Principal != a.Principal {
		return false
	}
	if f.Host != nil && *f.Host != a.Host {
		return false
	}
	if f.Operation != kmsg.ACLOperationAny && f.Operation != a.Operation {
		return false
	}
	return f.Permission == kmsg.ACLPermissionTypeAny || f.Permission == a.Permission
}

// ValidateFilter reports a filter with unknown enum values.
func (f Filter) Validate() error {
	if f.ResourceType < kmsg.ACLResourceTypeAny || f.ResourceType > kmsg.ACLResourceTypeUser {
		return fmt.Errorf("auth: filter resource type %d is unknown", f.ResourceType)
	}
	if f.PatternType < kmsg.ACLResourcePatternTypeAny || f.PatternType > kmsg.ACLResourcePatternTypePrefixed {
		return fmt.Errorf("auth: filter pattern type %d is unknown", f.PatternType)
	}
	if f.Operation < kmsg.ACLOperationAny || f.Operation > kmsg.ACLOperationCreateTokens {
		return fmt.Errorf("auth: filter operation %d is unknown", f.Operation)
	}
	if f.Permission < kmsg.ACLPermissionTypeAny || f.Permission > kmsg.ACLPermissionTypeAllow {
		return fmt.Errorf("auth: filter permission %d is unknown", f.Permission)
	}
	return nil
}

// patternCovers reports whether binding a applies to the resource named
// name (of a's type): a literal equal name, the literal wildcard, or a
// prefix of name.
func patternCovers(a ACL, name string) bool {
	switch a.PatternType {
	case kmsg.ACLResourcePatternTypeLiteral:
		return a.ResourceName == name || a.ResourceName == WildcardResource
	case kmsg.ACLResourcePatternTypePrefixed:
		return strings.HasPrefix(name, a.ResourceName)
	}
	return false
}

// Authorizer decides requests against a fixed set of ACLs. It is
// immutable: the stores build a new one on every change.
type Authorizer struct {
	acls []ACL
	// super are the super users' principals: allowed everything.
	super map[string]bool
	// allowIfNoACL allows an operation on a resource no ACL applies to
	// (Kafka's allow.everyone.if.no.acl.found); otherwise it is denied.
	allowIfNoACL bool
}

// NewAuthorizer returns an authorizer over acls (which it does not copy:
// the caller must not change them afterwards).
func NewAuthorizer(acls []ACL, superUsers []string, allowIfNoACL bool) *Authorizer {
	a := &Authorizer{acls: acls, super: map[string]bool{}, allowIfNoACL: allowIfNoACL}
	for _, u := range superUsers {
		a.super[u] = true
	}
	return a
}

// Authorized reports whether principal, connected from host, may perform
// op on the resource of type rt named name, by Kafka's rules:
//   - super users may do anything;
//   - when no ACL applies to the resource (whatever its principal or
//     operation), the answer is allowIfNoACL;
//   - a DENY for the principal (or User:*), the host (or *), and op (or
//     ALL) wins over any ALLOW;
//   - otherwise an ALLOW of op (or ALL) is needed, where an ALLOW of READ,
//     WRITE, DELETE or ALTER implies DESCRIBE, and ALTER_CONFIGS implies
//     DESCRIBE_CONFIGS.
func (a *Authorizer) Authorized(principal, host string, op Operation, rt ResourceType, name string) bool {
	if a.super[principal] {
		return true
	}
	any := false
	allowed := false
	for i := range a.acls {
		acl := &a.acls[i]
		if acl.ResourceType != rt || !patternCovers(*acl, name) {
			continue
		}
		any = true
		if acl.Principal != principal && acl.Principal != WildcardPrincipal {
			continue
		}
		if acl.Host != host && acl.Host != WildcardHost {
			continue
		}
		if acl.Permission == kmsg.ACLPermissionTypeDeny {
			if acl.Operation == op || acl.Operation == kmsg.ACLOperationAll {
				return false
			}
			continue
		}
		if acl.Permission == kmsg.ACLPermissionTypeAllow && implies(acl.Operation, op) {
			allowed = true
		}
	}
	if !any {
		return a.allowIfNoACL
	}
	return allowed
}

// implies reports whether an ALLOW of granted allows op.
func implies(granted, op Operation) bool {
	if granted == op || granted == kmsg.ACLOperationAll {
		return true
	}
	switch op {
	case kmsg.ACLOperationDescribe:
		switch granted {
		case kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationDelete, kmsg.ACLOperationAlter:
			return true
		}
	case kmsg.ACLOperationDescribeConfigs:
		return granted == kmsg.ACLOperationAlterConfigs
	}
	return false
}

// AnyAllowed reports whether principal may perform op on at least one
// resource of type rt, by an ALLOW that no DENY of a whole-type wildcard
// cancels (used where Kafka asks "may write some topic", e.g. idempotent
// producers without IDEMPOTENT_WRITE on the cluster).
func (a *Authorizer) AnyAllowed(principal, host string, op Operation, rt ResourceType) bool {
	if a.super[principal] {
		return true
	}
	for i := range a.acls {
		acl := &a.acls[i]
		if acl.ResourceType == rt && acl.Permission == kmsg.ACLPermissionTypeAllow && implies(acl.Operation, op) &&
			(acl.Principal == principal || acl.Principal == WildcardPrincipal) &&
			(acl.Host == host || acl.Host == WildcardHost) &&
			a.Authorized(principal, host, op, rt, acl.ResourceName) {
			return true
		}
	}
	return false
}
