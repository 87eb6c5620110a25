package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// StartKind says where consumption begins.
type StartKind int

// Where consumption begins.
const (
	// StartBeginning is each partition's log start offset.
	StartBeginning StartKind = iota
	// StartEnd is each partition's end offset: only new records.
	StartEnd
	// StartOffset is a fixed offset in every partition, clamped to the
	// partition's [start, end] range.
	StartOffset
	// StartFromEnd is N records before each partition's end (not before its
	// start).
	StartFromEnd
	// StartTimestamp is the first offset whose timestamp is at or after a
	// time (the end offset when there is none).
	StartTimestamp
)

// Start is a parsed --from value.
type Start struct {
	Kind StartKind
	// N is the offset (StartOffset) or the count back from the end
	// (StartFromEnd).
	N int64
	// Millis is the Unix millisecond time for StartTimestamp.
	Millis int64
}

// ParseStart parses a --from value:
//
//	beginning | end
//	N | offset:N       offset N
//	-N                 N records before the end
//	ts:T | timestamp:T T is Unix milliseconds, an RFC 3339 time, or a
//	                   duration relative to now (ts:-15m)
//	an RFC 3339 time   same as ts:T
//
// now supplies the time for relative durations.
func ParseStart(s string, now func() time.Time) (Start, error) {
	switch s {
	case "beginning", "earliest", "start", "":
		return Start{Kind: StartBeginning}, nil
	case "end", "latest":
		return Start{Kind: StartEnd}, nil
	}
	for _, p := range []string{"ts:", "timestamp:"} {
		if rest, ok := strings.CutPrefix(s, p); ok {
			return parseTimestamp(rest, now)
		}
	}
	if rest, ok := strings.CutPrefix(s, "offset:"); ok {
		s = rest
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 || strings.HasPrefix(s, "-") {
			return Start{Kind: StartFromEnd, N: -n}, nil
		}
		return Start{Kind: StartOffset, N: n}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return Start{Kind: StartTimestamp, Millis: t.UnixMilli()}, nil
	}
	return Start{}, fmt.Errorf("cli: --from %q: want beginning, end, an offset, -N, ts:<unix ms|RFC 3339|duration> or an RFC 3339 time", s)
}

func parseTimestamp(s string, now func() time.Time) (Start, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return Start{Kind: StartTimestamp, Millis: ms}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return Start{Kind: StartTimestamp, Millis: t.UnixMilli()}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return Start{Kind: StartTimestamp, Millis: now().Add(d).UnixMilli()}, nil
	}
	return Start{}, fmt.Errorf("cli: timestamp %q: want Unix milliseconds, an RFC 3339 time or a duration", s)
}

// ConsumeOptions says what Consume reads and when it stops.
type ConsumeOptions struct {
	// Topic to read. Required.
	Topic string
	// From is where each partition starts. Default: the beginning.
	From Start
	// Partitions limits reading to these partitions. Default (nil): all.
	Partitions []int32
	// Count stops after this many records in total. Default 0: no limit.
	Count int
	// UntilEnd stops once every partition reaches the end offset it had
	// when Consume started. Default: false (wait for new records).
	UntilEnd bool
	// ReadCommitted reads only records of committed transactions, up to
	// the last stable offset (which is then the end for UntilEnd).
	// Default: false (read_uncommitted).
	ReadCommitted bool
	// Format renders each record. Default: FormatHuman.
	Format RecordFormatter
	// Consumed is incremented per record written, for a progress
	// indicator. Optional.
	Consumed *atomic.Int64
	// ResolveTimeout bounds the offset lookups made before reading starts,
	// so an unreachable cluster fails fast. Default 0: no bound beyond
	// ctx's.
	ResolveTimeout time.Duration
}

// NewClient makes a franz-go client with the caller's connection options
// plus the given ones; Consume uses it to make its consuming client.
type NewClient func(opts ...kgo.Opt) (*kgo.Client, error)

// partRange is one partition's start offset and, with UntilEnd, the offset
// at which it is done.
type partRange struct {
	start, stop int64
}

// Consume writes the records of a topic to w, one formatted record at a
// time, until Count records, the end (UntilEnd), or ctx ends; an ended ctx
// is a normal stop (Ctrl-C) and returns a nil error. It returns the number of
// records written.
func Consume(ctx context.Context, newClient NewClient, w io.Writer, opts ConsumeOptions) (int, error) {
	if opts.Topic == "" {
		return 0, errors.New("cli: consume: no topic named")
	}
	if opts.Format == nil {
		opts.Format = FormatHuman{}
	}
	admCl, err := newClient()
	if err != nil {
		return 0, fmt.Errorf("cli: consume: %w", err)
	}
	rctx, cancel := ctx, context.CancelFunc(func() {})
	if opts.ResolveTimeout > 0 {
		rctx, cancel = context.WithTimeout(ctx, opts.ResolveTimeout)
	}
	ranges, err := resolveRanges(rctx, kadm.NewClient(admCl), opts)
	cancel()
	admCl.Close()
	if err != nil && ctx.Err() != nil {
		return 0, nil // stopped (Ctrl-C) before the first record
	}
	if err != nil {
		return 0, fmt.Errorf("cli: consume: %w", err)
	}

	offsets := map[int32]kgo.Offset{}
	remaining := 0 // partitions not yet at their stop offset (UntilEnd)
	for p, r := range ranges {
		if opts.UntilEnd && r.start >= r.stop {
			continue
		}
		offsets[p] = kgo.NewOffset().At(r.start)
		remaining++
	}
	if len(offsets) == 0 {
		return 0, nil // UntilEnd with nothing to read
	}
	// Control records (transaction markers) are kept, not printed: a
	// partition whose end is a marker is done once the marker is seen.
	copts := []kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{opts.Topic: offsets}), kgo.KeepControlRecords()}
	if opts.ReadCommitted {
		copts = append(copts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := newClient(copts...)
	if err != nil {
		return 0, fmt.Errorf("cli: consume: %w", err)
	}
	defer cl.Close()

	bw := bufio.NewWriterSize(w, 64<<10)
	done := map[int32]bool{}
	n := 0
	var buf []byte
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return n, bw.Flush()
		}
		var fatal error
		fetches.EachError(func(_ string, p int32, err error) {
			var loss *kgo.ErrDataLoss
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || kerr.IsRetriable(err) || errors.As(err, &loss) {
				// Data loss means retention removed records between the
				// offset lookup and the fetch; the client has moved on to
				// what exists, and so do we.
				return
			}
			if fatal == nil {
				fatal = fmt.Errorf("partition %d: %w", p, KafkaError(err, ""))
			}
		})
		if fatal != nil {
			_ = bw.Flush()
			return n, fmt.Errorf("cli: consume: %w", fatal)
		}
		stop := false
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			if stop {
				return
			}
			r := ranges[fp.Partition]
			for _, rec := range fp.Records {
				if opts.UntilEnd && rec.Offset >= r.stop {
					break
				}
				if rec.Attrs.IsControl() {
					continue
				}
				buf = opts.Format.AppendRecord(buf[:0], rec)
				if _, err := bw.Write(buf); err != nil {
					fatal = err
					stop = true
					return
				}
				n++
				if opts.Consumed != nil {
					opts.Consumed.Add(1)
				}
				if opts.Count > 0 && n >= opts.Count {
					stop = true
					return
				}
			}
			if opts.UntilEnd && len(fp.Records) > 0 && !done[fp.Partition] {
				if last := fp.Records[len(fp.Records)-1].Offset; last+1 >= r.stop {
					done[fp.Partition] = true
					remaining--
				}
			}
		})
		if fatal != nil {
			return n, fmt.Errorf("cli: consume: writing output: %w", fatal)
		}
		if err := bw.Flush(); err != nil {
			return n, fmt.Errorf("cli: consume: writing output: %w", err)
		}
		if stop || (opts.UntilEnd && remaining == 0) {
			return n, nil
		}
	}
}

// resolveRanges turns opts.From into an exact start offset per partition,
// and records each partition's current end as its stop offset.
func resolveRanges(ctx context.Context, adm *kadm.Client, opts ConsumeOptions) (map[int32]partRange, error) {
	starts, err := adm.ListStartOffsets(ctx, opts.Topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing start offsets of %q: %w", opts.Topic, KafkaError(err, ""))
	}
	listEnds := adm.ListEndOffsets
	if opts.ReadCommitted {
		listEnds = adm.ListCommittedOffsets
	}
	ends, err := listEnds(ctx, opts.Topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing end offsets of %q: %w", opts.Topic, KafkaError(err, ""))
	}
	var byTime kadm.ListedOffsets
	if opts.From.Kind == StartTimestamp {
		byTime, err = adm.ListOffsetsAfterMilli(ctx, opts.From.Millis, opts.Topic)
		if err == nil {
			err = byTime.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("listing offsets of %q by time: %w", opts.Topic, KafkaError(err, ""))
		}
	}
	all := map[int32]partRange{}
	starts.Each(func(lo kadm.ListedOffset) {
		if lo.Topic != opts.Topic || lo.Partition < 0 {
			return
		}
		end, _ := ends.Lookup(opts.Topic, lo.Partition)
		r := partRange{stop: end.Offset}
		switch opts.From.Kind {
		case StartBeginning:
			r.start = lo.Offset
		case StartEnd:
			r.start = end.Offset
		case StartOffset:
			r.start = min(max(opts.From.N, lo.Offset), end.Offset)
		case StartFromEnd:
			r.start = max(end.Offset-opts.From.N, lo.Offset)
		case StartTimestamp:
			r.start = end.Offset
			if t, ok := byTime.Lookup(opts.Topic, lo.Partition); ok && t.Offset >= 0 {
				r.start = t.Offset
			}
		}
		all[lo.Partition] = r
	})
	if len(all) == 0 {
		return nil, fmt.Errorf("topic %q: %w", opts.Topic, &CodeError{Code: kerr.UnknownTopicOrPartition, Message: "no such topic"})
	}
	if len(opts.Partitions) == 0 {
		return all, nil
	}
	chosen := map[int32]partRange{}
	for _, p := range opts.Partitions {
		r, ok := all[p]
		if !ok {
			ps := make([]int32, 0, len(all))
			for q := range all {
				ps = append(ps, q)
			}
			slices.Sort(ps)
			return nil, fmt.Errorf("topic %q has no partition %d (partitions: %v)", opts.Topic, p, ps)
		}
		chosen[p] = r
	}
	return chosen, nil
}
