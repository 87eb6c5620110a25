package storage

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// epochEntry says that leader epoch epoch started at offset start.
type epochEntry struct {
	epoch Epoch
	start Offset
}

// The leader-epoch checkpoint file "leader-epoch-checkpoint" is text, as
// Kafka's: a version line ("0"), a count line, then one "epoch startOffset"
// line per entry, both increasing.
const epochCheckpointFile = "leader-epoch-checkpoint"

func encodeEpochs(es []epochEntry) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(es))
	for _, e := range es {
		fmt.Fprintf(&b, "%d %d\n", e.epoch, e.start)
	}
	return b.Bytes()
}

func decodeEpochs(data []byte) ([]epochEntry, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		return strings.TrimSpace(sc.Text()), true
	}
	v, ok := line()
	if !ok || v != "0" {
		return nil, fmt.Errorf("storage: leader-epoch checkpoint: version %q, want 0", v)
	}
	c, _ := line()
	n, err := strconv.Atoi(c)
	if err != nil || n < 0 || n > len(data) {
		return nil, fmt.Errorf("storage: leader-epoch checkpoint: bad count %q", c)
	}
	es := make([]epochEntry, 0, n)
	for i := range n {
		l, ok := line()
		if !ok {
			return nil, fmt.Errorf("storage: leader-epoch checkpoint: %d of %d entries", i, n)
		}
		f := strings.Fields(l)
		if len(f) != 2 {
			return nil, fmt.Errorf("storage: leader-epoch checkpoint: bad line %q", l)
		}
		e, err1 := strconv.ParseInt(f[0], 10, 32)
		o, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || e < 0 || o < 0 {
			return nil, fmt.Errorf("storage: leader-epoch checkpoint: bad line %q", l)
		}
		if i > 0 && (Epoch(e) <= es[i-1].epoch || Offset(o) < es[i-1].start) {
			return nil, fmt.Errorf("storage: leader-epoch checkpoint: line %q does not follow %d %d", l, es[i-1].epoch, es[i-1].start)
		}
		es = append(es, epochEntry{Epoch(e), Offset(o)})
	}
	if l, ok := line(); ok && l != "" {
		return nil, fmt.Errorf("storage: leader-epoch checkpoint: trailing %q", l)
	}
	return es, nil
}

// The log-start-offset checkpoint "log-start-offset-checkpoint" is text: a
// version line ("0") and the log start offset. It exists once DeleteRecords
// or retention moved the start past the first segment's base.
const logStartCheckpointFile = "log-start-offset-checkpoint"

func encodeLogStart(o Offset) []byte { return fmt.Appendf(nil, "0\n%d\n", o) }

func decodeLogStart(data []byte) (Offset, error) {
	f := strings.Fields(string(data))
	if len(f) != 2 || f[0] != "0" {
		return 0, fmt.Errorf("storage: log-start-offset checkpoint: bad content %q", data)
	}
	o, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || o < 0 {
		return 0, fmt.Errorf("storage: log-start-offset checkpoint: bad offset %q", f[1])
	}
	return Offset(o), nil
}

// The clean-shutdown marker "clean-shutdown" is text: a version line ("1"),
// "activeBase activeSize", then one line per sealed segment,
// "base size next maxTs maxTsAt" (version "0" has no segment lines). Close
// writes it (after fsyncing the active segment and writing its index
// files); Open deletes it before anything else and, when it matches the
// active segment, checks that segment from its indexes like a sealed one
// instead of reading it whole; a sealed segment it lists whose file has the
// listed size is taken as listed, its file left unopened and its indexes
// unread until a read needs them.
const cleanShutdownFile = "clean-shutdown"

// The recovery-point checkpoint "recovery-point-checkpoint" is text: a
// version line ("0"), the recovery point (the base of the segment that was
// active when it was written), one line per sealed segment below it,
// "base size next maxTs maxTsAt" as in the clean-shutdown marker, and a
// last line "end" (a file cut short is refused whole). Every byte below
// the recovery point was fsynced before it was written, and the data of
// the listed segments' index files too. rollLocked
// rewrites it as it seals a segment, before it creates the next one:
// fsynced, through a temporary file and a rename that the roll's directory
// sync (after creating the next segment) makes durable; the sealed
// segment's index files are made durable before it (a directory sync of
// their own), not left to the order the file system keeps renames in. A compaction swap
// rewrites it durably without the swapped segments before the swap and
// with the new one after. Open reads it when it finds no clean-shutdown
// marker (a crash or kill): a listed sealed segment below the recovery
// point whose file has the listed size, and whose next offset does not
// pass the next segment's base, is taken as listed, as after a clean stop
// (its file unopened; its index files read and checked against the batch
// at their last entry on first use, rebuilt from a scan when wrong); only
// the segments from the recovery point on are checked batch by batch. A
// rewrite that fails removes it: what it would have listed is then checked
// on the next open. One that can be neither rewritten nor removed (and so
// may go stale) fails the roll, before the next segment exists, or the
// compaction, before its swap.
const recoveryPointFile = "recovery-point-checkpoint"

func encodeRecoveryPoint(point Offset, sealed []*segment) []byte {
	b := fmt.Appendf(nil, "0\n%d\n", point)
	for _, s := range sealed {
		// An emptied segment (compaction may leave one) is cheap to check.
		if s.base < point && s.size > 0 && s.next > s.base {
			b = appendSummary(b, s)
		}
	}
	return append(b, "end\n"...)
}

func decodeRecoveryPoint(data []byte) (Offset, map[Offset]sealedSummary, error) {
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	bad := func() (Offset, map[Offset]sealedSummary, error) {
		return 0, nil, fmt.Errorf("storage: recovery-point checkpoint: bad content %.200q", data)
	}
	if len(lines) < 3 || lines[0] != "0" || lines[len(lines)-1] != "end" {
		return bad()
	}
	point, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || point < 0 {
		return bad()
	}
	sealed := map[Offset]sealedSummary{}
	for _, line := range lines[2 : len(lines)-1] {
		// Unlike the clean-shutdown marker, the checkpoint lists no
		// empty segment (encodeRecoveryPoint).
		base, s, ok := parseSummary(line)
		if !ok || s.size == 0 || s.next == base || base >= Offset(point) || s.next > Offset(point) {
			return bad()
		}
		sealed[base] = s
	}
	return Offset(point), sealed, nil
}

// sealedSummary is what the clean-shutdown marker or the recovery-point
// checkpoint says of a sealed segment.
type sealedSummary struct {
	size           int64
	next           Offset
	maxTs, maxTsAt int64
}

func encodeCleanShutdown(base Offset, size int64, sealed []*segment) []byte {
	b := fmt.Appendf(nil, "1\n%d %d\n", base, size)
	for _, s := range sealed {
		b = appendSummary(b, s)
	}
	return b
}

func decodeCleanShutdown(data []byte) (Offset, int64, map[Offset]sealedSummary, error) {
	bad := func() (Offset, int64, map[Offset]sealedSummary, error) {
		return 0, 0, nil, fmt.Errorf("storage: clean-shutdown marker: bad content %.200q", data)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) < 2 || (lines[0] != "0" && lines[0] != "1") || (lines[0] == "0" && len(lines) != 2) {
		return bad()
	}
	v, ok := numbers(lines[1], 2)
	if !ok || v[0] < 0 || v[1] < 0 {
		return bad()
	}
	sealed := map[Offset]sealedSummary{}
	for _, line := range lines[2:] {
		base, s, ok := parseSummary(line)
		if !ok {
			return bad()
		}
		sealed[base] = s
	}
	return Offset(v[0]), v[1], sealed, nil
}

// appendSummary appends sealed segment s's line "base size next maxTs
// maxTsAt", as the clean-shutdown marker and the recovery-point
// checkpoint list it.
func appendSummary(b []byte, s *segment) []byte {
	return fmt.Appendf(b, "%d %d %d %d %d\n", s.base, s.size, s.next, s.maxTs, s.maxTsAt)
}

// parseSummary parses a line appendSummary wrote; it reports false unless
// base >= 0, size >= 0 and next >= base.
func parseSummary(line string) (Offset, sealedSummary, bool) {
	v, ok := numbers(line, 5)
	if !ok || v[0] < 0 || v[1] < 0 || v[2] < v[0] {
		return 0, sealedSummary{}, false
	}
	return Offset(v[0]), sealedSummary{size: v[1], next: Offset(v[2]), maxTs: v[3], maxTsAt: v[4]}, true
}

// numbers parses line as exactly want decimal integers separated by
// white space.
func numbers(line string, want int) ([]int64, bool) {
	f := strings.Fields(line)
	if len(f) != want {
		return nil, false
	}
	v := make([]int64, want)
	for i, x := range f {
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return nil, false
		}
		v[i] = n
	}
	return v, true
}
