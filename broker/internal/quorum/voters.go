package quorum

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// NodeID names a node of the cluster: a controller voter's raft id, the same
// number as the broker's --node-id. Zero is never a valid id (raft reserves it
// for "none").
type NodeID = uint64

// Voter is one controller voter: its node id and the address its controller
// listener accepts other voters on.
type Voter struct {
	ID   NodeID
	Addr string
}

// String returns the voter in the id@host:port form ParseVoters reads.
func (v Voter) String() string { return strconv.FormatUint(v.ID, 10) + "@" + v.Addr }

// ParseVoters reads a voter set in the form of --controller-voters:
// comma-separated id@host:port specs, e.g. "1@127.0.0.1:9093,2@127.0.0.1:9193".
// It reports every bad spec at once and returns the voters sorted by id.
func ParseVoters(s string) ([]Voter, error) {
	var (
		vs   []Voter
		errs []error
	)
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("quorum: empty voter set: want id@host:port[,id@host:port...]")
	}
	for i, spec := range strings.Split(s, ",") {
		spec = strings.TrimSpace(spec)
		idStr, addr, ok := strings.Cut(spec, "@")
		if !ok {
			errs = append(errs, fmt.Errorf("quorum: voter %d %q: want id@host:port", i+1, spec))
			continue
		}
		id, err := strconv.ParseUint(idStr, 10, 64)
		if err != nil || id == 0 {
			errs = append(errs, fmt.Errorf("quorum: voter %d %q: node id %q is not a positive integer", i+1, spec, idStr))
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("quorum: voter %d %q: address: %w", i+1, spec, err))
			continue
		}
		vs = append(vs, Voter{ID: id, Addr: addr})
	}
	if err := checkVoters(vs); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return sortedVoters(vs), nil
}

// FormatVoters returns vs in the form ParseVoters reads, sorted by id.
func FormatVoters(vs []Voter) string {
	parts := make([]string, 0, len(vs))
	for _, v := range sortedVoters(vs) {
		parts = append(parts, v.String())
	}
	return strings.Join(parts, ",")
}

// checkVoters reports duplicate ids and addresses.
func checkVoters(vs []Voter) error {
	var errs []error
	ids := map[NodeID]bool{}
	addrs := map[string]NodeID{}
	for _, v := range vs {
		if ids[v.ID] {
			errs = append(errs, fmt.Errorf("quorum: voter id %d listed twice", v.ID))
		}
		ids[v.ID] = true
		if other, ok := addrs[v.Addr]; ok && other != v.ID {
			errs = append(errs, fmt.Errorf("quorum: voters %d and %d share address %s", other, v.ID, v.Addr))
		}
		addrs[v.Addr] = v.ID
	}
	return errors.Join(errs...)
}

func sortedVoters(vs []Voter) []Voter {
	out := slices.Clone(vs)
	slices.SortFunc(out, func(a, b Voter) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

func voterIDs(vs []Voter) []uint64 {
	ids := make([]uint64, 0, len(vs))
	for _, v := range sortedVoters(vs) {
		ids = append(ids, v.ID)
	}
	return ids
}
