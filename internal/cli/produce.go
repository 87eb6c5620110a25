package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ProduceOptions says how Produce turns input lines into records.
type ProduceOptions struct {
	// Topic receives the records. Required.
	Topic string
	// KeySeparator, when not empty, splits each line at its first
	// occurrence into key and value; a line without it has a null key and
	// the whole line as value. Default: "" (every line is a value, keys are
	// null).
	KeySeparator string
	// Headers are added to every record.
	Headers []kgo.RecordHeader
	// Partition, when >= 0, sends every record to that partition (the client
	// must use kgo.ManualPartitioner). Default in weir: -1, Kafka's default
	// partitioner (murmur2 of the key; sticky batches for null keys).
	Partition int32
	// Count is incremented for every acknowledged record, for a progress
	// indicator. Optional.
	Count *atomic.Int64
}

// ProducedPartition summarises what landed in one partition.
type ProducedPartition struct {
	Partition   int32 `json:"partition"`
	Records     int64 `json:"records"`
	FirstOffset int64 `json:"first_offset"`
	LastOffset  int64 `json:"last_offset"`
}

// ProduceResult is produce's output.
type ProduceResult struct {
	Topic      string              `json:"topic"`
	Records    int64               `json:"records"`
	Failed     int64               `json:"failed,omitempty"`
	Partitions []ProducedPartition `json:"partitions"`
	Error      string              `json:"error,omitempty"`
}

// Produce sends one record per line of in ("\n"-terminated; the newline is
// not part of the value, a final line without one still counts) and waits
// until every record is acknowledged or failed, then prints a summary to w.
// It returns the first delivery error, if any, and stops reading input at
// that error. When ctx ends it stops reading, waits for what was sent, and
// returns ctx's error.
func Produce(ctx context.Context, cl *kgo.Client, in io.Reader, w io.Writer, out Output, opts ProduceOptions) (ProduceResult, error) {
	res := ProduceResult{Topic: opts.Topic, Partitions: []ProducedPartition{}}
	if opts.Topic == "" {
		return res, errors.New("cli: produce: no topic named")
	}
	var (
		mu       sync.Mutex
		parts    = map[int32]*ProducedPartition{}
		firstErr error
		failed   int64
		// failing is closed at the first delivery error: the rest of the
		// input would most likely fail the same way (unknown topic, record
		// too large, no authorization), so reading stops there.
		failing = make(chan struct{})
	)
	done := func(r *kgo.Record, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failed++
			if firstErr == nil {
				firstErr = KafkaError(err, "")
				close(failing)
			}
			return
		}
		p := parts[r.Partition]
		if p == nil {
			p = &ProducedPartition{Partition: r.Partition, FirstOffset: r.Offset, LastOffset: r.Offset}
			parts[r.Partition] = p
		}
		p.Records++
		p.FirstOffset = min(p.FirstOffset, r.Offset)
		p.LastOffset = max(p.LastOffset, r.Offset)
		if opts.Count != nil {
			opts.Count.Add(1)
		}
	}

	lines, stopReading := readLines(in)
	var readErr error
	inputEnded := false
loop:
	for {
		select {
		case <-ctx.Done():
			readErr = ctx.Err()
			break loop
		case <-failing:
			break loop
		case l, ok := <-lines:
			if !ok {
				inputEnded = true
				break loop
			}
			if l.err != nil {
				inputEnded = true
				readErr = fmt.Errorf("reading input: %w", l.err)
				break loop
			}
			cl.Produce(ctx, lineRecord(l.b, opts), done)
		}
	}
	stopReading(inputEnded)
	// Flush waits for every record handed to Produce above, so done has run
	// for each when it returns (an ended ctx fails the rest fast).
	flushErr := cl.Flush(ctx)

	mu.Lock()
	for _, p := range parts {
		res.Records += p.Records
		res.Partitions = append(res.Partitions, *p)
	}
	res.Failed = failed
	err := errors.Join(readErr, firstErr)
	if err == nil && flushErr != nil {
		err = flushErr
	}
	mu.Unlock()
	slices.SortFunc(res.Partitions, func(a, b ProducedPartition) int { return int(a.Partition - b.Partition) })
	if err != nil {
		res.Error = err.Error()
	}

	if out.JSON {
		if werr := writeJSON(w, res); werr != nil && err == nil {
			err = werr
		}
	} else {
		fmt.Fprintf(w, "Produced %s to %s", plural(int(res.Records), "record"), res.Topic)
		if len(res.Partitions) > 0 {
			fmt.Fprint(w, " (")
			for i, p := range res.Partitions {
				if i > 0 {
					fmt.Fprint(w, ", ")
				}
				fmt.Fprintf(w, "partition %d: offsets %d-%d", p.Partition, p.FirstOffset, p.LastOffset)
			}
			fmt.Fprint(w, ")")
		}
		fmt.Fprintln(w, ".")
		if res.Failed > 0 {
			fmt.Fprintf(w, "%s failed.\n", plural(int(res.Failed), "record"))
		}
	}
	if err != nil {
		return res, fmt.Errorf("cli: produce: %w", err)
	}
	return res, nil
}

// lineRecord builds the record for one input line.
func lineRecord(line []byte, opts ProduceOptions) *kgo.Record {
	r := &kgo.Record{Topic: opts.Topic, Value: line, Headers: opts.Headers}
	if opts.Partition >= 0 {
		r.Partition = opts.Partition
	}
	if opts.KeySeparator != "" {
		if k, v, ok := bytes.Cut(line, []byte(opts.KeySeparator)); ok {
			r.Key, r.Value = k, v
		}
	}
	if r.Value == nil {
		r.Value = []byte{} // an empty line is an empty value, not a tombstone
	}
	return r
}

type line struct {
	b   []byte
	err error
}

// readLines reads in line by line on its own goroutine so that the produce
// loop can also watch for cancellation. stop(wait) ends the goroutine; with
// wait (the input ended, so the goroutine is returning) it also waits for it.
// NB: a Read blocked on a terminal or pipe cannot be interrupted from Go, so
// on cancellation the goroutine is left to end with the input or the
// process rather than hang the caller.
func readLines(in io.Reader) (lines <-chan line, stop func(wait bool)) {
	ch := make(chan line)
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		defer close(ch)
		br := bufio.NewReaderSize(in, 64<<10)
		for {
			b, err := br.ReadBytes('\n')
			if len(b) > 0 {
				if b[len(b)-1] == '\n' {
					b = b[:len(b)-1]
				}
				select {
				case ch <- line{b: b}:
				case <-quit:
					return
				}
			}
			if err == io.EOF {
				return
			}
			if err != nil {
				select {
				case ch <- line{err: err}:
				case <-quit:
				}
				return
			}
		}
	}()
	return ch, func(wait bool) {
		close(quit)
		if wait {
			<-finished
		}
	}
}
