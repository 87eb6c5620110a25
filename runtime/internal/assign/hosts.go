package assign

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Query addresses. An instance that serves interactive queries advertises
// the address it answers them on (host:port) in its join metadata; the
// leader, when it balances, sends every member the whole group's map of
// addresses to active and standby tasks in the sync assignment, so that
// any instance can tell where the store of a key lives without asking.
//
// Wire forms (version 2; an instance with no query address keeps sending
// version 1, so that instances without this feature still decode it):
//
//	join metadata:   2, tasks (as EncodeTasks without its version byte), address string
//	sync assignment: 2, standby tasks (same), count uvarint,
//	                 count × (address string, active tasks, standby tasks)
//
// A string is a uvarint length and its bytes.

const hostsVersion = 2

// maxAddrLen bounds an advertised address (a host name and a port).
const maxAddrLen = 1024

// Host is one instance's query address and the tasks it holds.
type Host struct {
	// Addr is the instance's query address, host:port.
	Addr string
	// Active are the tasks the instance runs, sorted.
	Active []TaskID
	// Standby are the tasks it keeps standby copies of, sorted.
	Standby []TaskID
}

// HostMap is the group's query addresses as of one assignment: only
// members that advertised an address appear.
type HostMap struct {
	Hosts []Host
}

// Locate returns the address of the instance running task t (ok false when
// none does: the task is withheld for a move, or its owner advertised no
// address) and the addresses of those holding standbys, sorted.
func (m HostMap) Locate(t TaskID) (active string, standbys []string, ok bool) {
	for _, h := range m.Hosts {
		if _, found := slices.BinarySearchFunc(h.Active, t, TaskID.Compare); found {
			active, ok = h.Addr, true
		}
		if _, found := slices.BinarySearchFunc(h.Standby, t, TaskID.Compare); found {
			standbys = append(standbys, h.Addr)
		}
	}
	slices.Sort(standbys)
	return active, standbys, ok
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// encodeList appends ts without a version byte.
func encodeList(dst []byte, ts []TaskID) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ts)))
	for _, t := range ts {
		dst = binary.AppendUvarint(dst, uint64(t.Subtopology))
		dst = binary.AppendUvarint(dst, uint64(t.Partition))
	}
	return dst
}

// EncodeJoin appends a member's join user data: the tasks it holds local
// state for and, when addr is not empty, its query address (version 2;
// version 1 without).
func EncodeJoin(dst []byte, local []TaskID, addr string) []byte {
	if addr == "" {
		return EncodeTasks(dst, local)
	}
	dst = append(dst, hostsVersion)
	dst = encodeList(dst, local)
	return appendString(dst, addr)
}

// DecodeJoin decodes what EncodeJoin wrote (either version). addr is ""
// for a member that advertises none.
func DecodeJoin(b []byte) (local []TaskID, addr string, err error) {
	if len(b) == 0 || b[0] == wireVersion {
		local, err = DecodeTasks(b)
		return local, "", err
	}
	if b[0] != hostsVersion {
		return nil, "", fmt.Errorf("%w: version %d, want %d or %d", ErrBadUserData, b[0], wireVersion, hostsVersion)
	}
	d := decoder{b: b[1:]}
	local = d.tasks()
	addr = d.string()
	if err := d.finish(); err != nil {
		return nil, "", err
	}
	return local, addr, nil
}

// EncodeSync appends a member's sync user data: its standby tasks and,
// when hosts is not nil, the group's host map (version 2; version 1
// without).
func EncodeSync(dst []byte, standby []TaskID, hosts *HostMap) []byte {
	if hosts == nil {
		return EncodeTasks(dst, standby)
	}
	dst = append(dst, hostsVersion)
	dst = encodeList(dst, standby)
	dst = binary.AppendUvarint(dst, uint64(len(hosts.Hosts)))
	for _, h := range hosts.Hosts {
		dst = appendString(dst, h.Addr)
		dst = encodeList(dst, h.Active)
		dst = encodeList(dst, h.Standby)
	}
	return dst
}

// DecodeSync decodes what EncodeSync wrote (either version); hosts is nil
// for version 1.
func DecodeSync(b []byte) (standby []TaskID, hosts *HostMap, err error) {
	if len(b) == 0 || b[0] == wireVersion {
		standby, err = DecodeTasks(b)
		return standby, nil, err
	}
	if b[0] != hostsVersion {
		return nil, nil, fmt.Errorf("%w: version %d, want %d or %d", ErrBadUserData, b[0], wireVersion, hostsVersion)
	}
	d := decoder{b: b[1:]}
	standby = d.tasks()
	n := d.count(3) // an address length and two task counts at least
	hosts = &HostMap{}
	for range n {
		if d.err != nil {
			break
		}
		h := Host{Addr: d.string()}
		h.Active = d.tasks()
		h.Standby = d.tasks()
		hosts.Hosts = append(hosts.Hosts, h)
	}
	if err := d.finish(); err != nil {
		return nil, nil, err
	}
	return standby, hosts, nil
}

// decoder reads the version 2 forms; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrBadUserData}, args...)...)
	}
	d.b = nil
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, k := binary.Uvarint(d.b)
	if k <= 0 {
		d.fail("bad %s", what)
		return 0
	}
	d.b = d.b[k:]
	return v
}

// count reads a count of items taking at least min bytes each, checked
// against what remains before anything is allocated for it.
func (d *decoder) count(min int) int {
	n := d.uvarint("count")
	if d.err == nil && n > uint64(len(d.b)/min) {
		d.fail("count %d in %d bytes", n, len(d.b))
		return 0
	}
	return int(n)
}

func (d *decoder) string() string {
	n := d.uvarint("string length")
	if d.err != nil {
		return ""
	}
	if n > maxAddrLen || n > uint64(len(d.b)) {
		d.fail("string of %d bytes in %d", n, len(d.b))
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) tasks() []TaskID {
	n := d.count(2)
	if d.err != nil {
		return nil
	}
	out := make([]TaskID, 0, n)
	for range n {
		s := d.uvarint("sub-topology")
		p := d.uvarint("partition")
		if d.err != nil {
			return nil
		}
		if s > 1<<31-1 || p > 1<<31-1 {
			d.fail("task %d_%d out of range", s, p)
			return nil
		}
		out = append(out, TaskID{Subtopology: int(s), Partition: int32(p)})
	}
	return out
}

func (d *decoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return d.err
}
