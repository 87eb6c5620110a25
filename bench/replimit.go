package main

// The replication limit: the least work replicating a record three ways
// takes on this machine, as the peer of the log workload's replication
// factor 3 / factor 1 ratio (bench/README.md, "log: replication factor 3
// against factor 1").
//
// Three node processes (the bench binary's hidden replimit-node command)
// each take one stream of record batches from the client (Linux only: page-cache
// drops and splice). With factor 1 a
// node checks a batch's CRC32C, appends it to a file and fsyncs; with
// factor 3 it also sends the batch to the two other nodes, which do the
// same and answer with what they have fsynced, and the client's batch is
// acknowledged once all three have. That is what a broker must do for a
// record at either factor (receive, checksum, write, fsync; the leader's
// two sends), with nothing of Kafka's protocol, indexes or bookkeeping:
// its factor 3 / factor 1 throughput bounds, in CPU, what a broker could
// reach on the same cores and disk. (It pushes batches to the followers
// from the leader's memory where a Kafka follower pulls them from the
// log, and has no offsets, indexes or requests to parse.) Writes and fsyncs are grouped as a broker's
// are: one fsync covers every batch written before it, and a follower
// drops what it has fsynced from the page cache, as Weir's followers do.
//
// The wire format is the benchmark's own: the client opens a stream with
// 'C' and the factor, then sends frames (4-byte big-endian length, then
// the batch: a 4-byte CRC32C of the rest, then the records); a node opens
// a follower stream with 'F' and forwards the frames as they came. The
// answers are 8-byte big-endian byte counts fsynced (a follower's) or
// acknowledged (to the client: fsynced on every replica).

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func init() { workloads = append(workloads, newReplimitCmd, newReplimitNodeCmd) }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maxBatch bounds a batch (a frame's length) on the nodes.
const maxBatch = 64 << 20

// batchCRCOK reports whether a batch's CRC32C (its first 4 bytes) is
// that of the rest.
func batchCRCOK(batch []byte) bool {
	return crc32.Checksum(batch[4:], castagnoli) == binary.BigEndian.Uint32(batch)
}

// readFrameLen reads a frame's length prefix from r into l and checks it.
func readFrameLen(r io.Reader, l *[4]byte) (int, error) {
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return 0, err
	}
	n := int(binary.BigEndian.Uint32(l[:]))
	if n < 4 || n > maxBatch {
		return 0, fmt.Errorf("frame of %d bytes", n)
	}
	return n, nil
}

type replimitConfig struct {
	Size       int           // record size
	Records    int           // records per phase, over the three streams
	BatchBytes int           // records per batch: BatchBytes / Size
	InFlight   int           // batches in flight per stream
	Rounds     int           // each round measures factor 1 and 3, the order alternating
	DataDir    string        // where the nodes' directories are made
	Splice     bool          // followers splice the socket into the file (one copy), then check the CRC over the file's pages
	Timeout    time.Duration // bound on each phase
}

func newReplimitCmd() *cobra.Command {
	cfg := replimitConfig{}
	cmd := &cobra.Command{
		Use:   "replimit",
		Short: "The least work of replicating records three ways: factor 3 / factor 1 throughput of a bare replicator on three processes",
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := runReplimit(cmd.Context(), cfg, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			printReplimit(cmd.OutOrStdout(), cfg, res)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Size, "size", 1024, "record size in bytes")
	f.IntVar(&cfg.Records, "records", 500_000, "records per phase, over the three nodes' streams")
	f.IntVar(&cfg.BatchBytes, "batch-bytes", 1<<20, "batch size in bytes (a franz-go producer batch is at most 1 MiB)")
	f.IntVar(&cfg.InFlight, "in-flight", 4, "batches in flight per stream (3 streams: the log workload's producer keeps 10,000 records buffered)")
	f.IntVar(&cfg.Rounds, "rounds", 3, "rounds; each measures factor 1 and factor 3, which goes first alternating")
	f.StringVar(&cfg.DataDir, "data-dir", "", "where the nodes' directories are made (default: the system temp dir)")
	f.BoolVar(&cfg.Splice, "splice", false, "followers splice(2) each batch from the socket into the file, one copy instead of two, and check its CRC over the file's pages mapped in (the page cache's)")
	f.DurationVar(&cfg.Timeout, "timeout", 5*time.Minute, "bound on each phase")
	return cmd
}

func (c replimitConfig) validate() error {
	if c.Size < 1 || c.BatchBytes < c.Size || c.BatchBytes > maxBatch-4 || c.Records < 1 || c.InFlight < 1 || c.Rounds < 1 || c.Timeout <= 0 {
		return errors.New("bench: --size, --records, --in-flight, --rounds and --timeout must be positive, --batch-bytes at least --size and below 64 MiB")
	}
	return nil
}

// perBatch is the records in one batch.
func (c replimitConfig) perBatch() int { return c.BatchBytes / c.Size }

// batches is the batches each of the three streams sends in a phase.
func (c replimitConfig) batches() int {
	return max(1, (c.Records+3*c.perBatch()-1)/(3*c.perBatch()))
}

// replimitResult is one measured phase.
type replimitResult struct {
	Round, Factor int
	Records       int
	Elapsed       time.Duration
	NodesCPU      time.Duration // the three node processes'
	ClientCPU     time.Duration // this process's
}

func (r replimitResult) rate() float64 { return float64(r.Records) / r.Elapsed.Seconds() }

func (r replimitResult) perRecord(d time.Duration) time.Duration {
	return d / time.Duration(r.Records)
}

func runReplimit(ctx context.Context, cfg replimitConfig, progress io.Writer) ([]replimitResult, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	bin, err := os.Executable()
	if err != nil {
		return nil, err
	}
	frame := replimitFrame(cfg)
	var out []replimitResult
	for round := range cfg.Rounds {
		dir, err := os.MkdirTemp(cfg.DataDir, "weir-bench-replimit-")
		if err != nil {
			return nil, err
		}
		res, err := replimitRound(ctx, cfg, bin, dir, round, frame, progress)
		if err != nil {
			// NB: the nodes' files and logs stay for a look.
			return nil, fmt.Errorf("bench: round %d (files and node logs in %s): %w", round+1, dir, err)
		}
		_ = os.RemoveAll(dir)
		out = append(out, res...)
	}
	return out, nil
}

// replimitRound starts three nodes and measures both factors on them.
func replimitRound(ctx context.Context, cfg replimitConfig, bin, dir string, round int, frame []byte, progress io.Writer) ([]replimitResult, error) {
	addrs := make([]string, 3)
	for i := range addrs {
		a, err := freeAddr()
		if err != nil {
			return nil, err
		}
		addrs[i] = a
	}
	var procs []*brokerProc
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	pids := make([]int, 0, 3)
	for i, a := range addrs {
		var peers []string
		for j, b := range addrs {
			if j != i {
				peers = append(peers, b)
			}
		}
		nd := filepath.Join(dir, fmt.Sprintf("node-%d", i+1))
		if err := os.MkdirAll(nd, 0o755); err != nil {
			return nil, err
		}
		args := []string{"replimit-node", "--listen", a, "--dir", nd, "--peers", strings.Join(peers, ",")}
		if cfg.Splice {
			args = append(args, "--splice")
		}
		p, err := startBroker(bin, args, filepath.Join(dir, fmt.Sprintf("node-%d.log", i+1)))
		if err != nil {
			return nil, err
		}
		p.addr = a
		procs = append(procs, p)
		pids = append(pids, p.cmd.Process.Pid)
	}
	for _, p := range procs {
		if err := waitListening(ctx, p, 10*time.Second); err != nil {
			return nil, err
		}
	}
	var out []replimitResult
	for _, f := range roundOrder([]string{"1", "3"}, round) {
		factor := int(f[0] - '0')
		fmt.Fprintf(progress, "bench: round %d/%d, replication factor %d...\n", round+1, cfg.Rounds, factor)
		pctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		cpu0, ccpu0, start := procCPU(pids), processCPU(), time.Now()
		err := replimitPhase(pctx, addrs, factor, cfg.batches(), cfg.InFlight, frame)
		elapsed, cpu, ccpu := time.Since(start), procCPU(pids)-cpu0, processCPU()-ccpu0
		cancel()
		if err != nil {
			var tails strings.Builder
			for i, p := range procs {
				fmt.Fprintf(&tails, "\nnode %d's output:\n%s", i+1, p.tail())
			}
			return nil, fmt.Errorf("replication factor %d: %w%s", factor, err, tails.String())
		}
		out = append(out, replimitResult{Round: round + 1, Factor: factor, Records: 3 * cfg.batches() * cfg.perBatch(),
			Elapsed: elapsed, NodesCPU: cpu, ClientCPU: ccpu})
	}
	return out, nil
}

// waitListening dials p's address until it accepts.
func waitListening(ctx context.Context, p *brokerProc, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err == nil {
			return c.Close()
		}
		select {
		case <-p.exited:
			return fmt.Errorf("node on %s exited (%v); its output:\n%s", p.addr, p.err, p.tail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond): // polling interval
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node on %s not listening after %v: %v", p.addr, limit, err)
		}
	}
}

// replimitFrame returns one batch as a frame: length, CRC32C, random
// records (incompressible, as the log workload's).
func replimitFrame(cfg replimitConfig) []byte {
	body := make([]byte, 4+cfg.perBatch()*cfg.Size)
	_, _ = rand.Read(body[4:])
	binary.BigEndian.PutUint32(body, crc32.Checksum(body[4:], castagnoli))
	return append(binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(body)), uint32(len(body))), body...)
}

// replimitPhase sends batches frames on a stream to each node at factor
// and waits until all are acknowledged.
func replimitPhase(ctx context.Context, addrs []string, factor, batches, inFlight int, frame []byte) error {
	errs := make(chan error, len(addrs))
	for _, a := range addrs {
		go func() { errs <- replimitStream(ctx, a, factor, batches, inFlight, frame) }()
	}
	var err error
	for range addrs {
		err = errors.Join(err, <-errs)
	}
	return err
}

// replimitStream is one client stream: frames sent with at most inFlight
// unacknowledged.
func replimitStream(ctx context.Context, addr string, factor, batches, inFlight int, frame []byte) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := c.Write([]byte{'C', byte(factor)}); err != nil {
		return err
	}
	size := int64(len(frame) - 4) // what a node counts: the batch, not its length prefix
	var acked atomic.Int64        // batches
	ackErr := make(chan error, 1)
	more := make(chan struct{}, 1)
	go func() {
		var b [8]byte
		for {
			if _, err := io.ReadFull(c, b[:]); err != nil {
				ackErr <- err
				return
			}
			acked.Store(int64(binary.BigEndian.Uint64(b[:])) / size)
			select {
			case more <- struct{}{}:
			default:
			}
			if acked.Load() == int64(batches) {
				ackErr <- nil
				return
			}
		}
	}()
	for sent := 0; sent < batches; sent++ {
		for int64(sent)-acked.Load() >= int64(inFlight) {
			select {
			case <-more:
			case err := <-ackErr:
				return fmt.Errorf("%s: acknowledgements: %w", addr, err)
			}
		}
		if _, err := c.Write(frame); err != nil {
			return fmt.Errorf("%s: %w", addr, err)
		}
	}
	if err := <-ackErr; err != nil {
		return fmt.Errorf("%s: acknowledgements: %w", addr, err)
	}
	return nil
}

func printReplimit(w io.Writer, cfg replimitConfig, res []replimitResult) {
	fmt.Fprintf(w, "replication limit: %d-byte records in %d-record batches, %d batches in flight per node, 3 nodes (one stream each), fsync grouped; %d round(s)\n\n",
		cfg.Size, cfg.perBatch(), cfg.InFlight, cfg.Rounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "round\tfactor\trecords\trecords/s\tnodes' CPU/rec\tclient CPU/rec\t")
	for _, r := range res {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%.0f\t%v\t%v\t\n", r.Round, r.Factor, r.Records, r.rate(), r.perRecord(r.NodesCPU), r.perRecord(r.ClientCPU))
	}
	_ = tw.Flush()
	var rates, cpus []float64
	for round := 1; round <= cfg.Rounds; round++ {
		var one, three *replimitResult
		for i := range res {
			if res[i].Round == round {
				if res[i].Factor == 1 {
					one = &res[i]
				} else {
					three = &res[i]
				}
			}
		}
		if one != nil && three != nil {
			rates = append(rates, three.rate()/one.rate())
			cpus = append(cpus, float64(three.perRecord(three.NodesCPU))/float64(one.perRecord(one.NodesCPU)))
		}
	}
	if len(rates) > 0 {
		fmt.Fprintf(w, "\nfactor 3 / factor 1 (median of %d rounds' ratios): %.2fx records/s (rounds %s); nodes' CPU per record %.2fx (%s)\n",
			len(rates), median(rates), ratioList(rates), median(cpus), ratioList(cpus))
	}
}

func newReplimitNodeCmd() *cobra.Command {
	var listen, dir, peers string
	var splice bool
	cmd := &cobra.Command{
		Use:    "replimit-node",
		Short:  "One node of the replimit workload",
		Hidden: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			var ps []string
			if peers != "" {
				ps = strings.Split(peers, ",")
			}
			return serveReplNode(ctx, ln, dir, ps, splice)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "address")
	cmd.Flags().StringVar(&dir, "dir", "", "directory of the node's files")
	cmd.Flags().StringVar(&peers, "peers", "", "the other nodes' addresses, comma-separated")
	cmd.Flags().BoolVar(&splice, "splice", false, "follow by splice(2) (see replimit --splice)")
	return cmd
}

// serveReplNode serves one node on ln until ctx ends: every stream gets a
// file of its own in dir.
func serveReplNode(ctx context.Context, ln net.Listener, dir string, peers []string, splice bool) error {
	context.AfterFunc(ctx, func() { _ = ln.Close() })
	var n atomic.Int64
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		path := filepath.Join(dir, fmt.Sprintf("stream-%d", n.Add(1)))
		go func() {
			defer c.Close()
			if err := replServe(c, path, peers, splice); err != nil && !errors.Is(err, io.EOF) {
				fmt.Fprintf(os.Stderr, "replimit-node: %s: %v\n", path, err)
			}
		}()
	}
}

// replServe serves one stream: a client's ('C') as its leader, a leader's
// ('F') as a follower.
func replServe(c net.Conn, path string, peers []string, splice bool) error {
	var hello [1]byte
	if _, err := io.ReadFull(c, hello[:]); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644) // NB: read too, to map batches in (--splice)
	if err != nil {
		return err
	}
	defer f.Close()
	switch hello[0] {
	case 'C':
		var factor [1]byte
		if _, err := io.ReadFull(c, factor[:]); err != nil {
			return err
		}
		if int(factor[0]) < 1 || int(factor[0]) > len(peers)+1 {
			return fmt.Errorf("factor %d with %d peers", factor[0], len(peers))
		}
		var fs []net.Conn
		for _, p := range peers[:factor[0]-1] {
			fc, err := net.Dial("tcp", p)
			if err != nil {
				return err
			}
			defer fc.Close()
			if _, err := fc.Write([]byte{'F'}); err != nil {
				return err
			}
			fs = append(fs, fc)
		}
		return replLead(c, f, fs)
	case 'F':
		return replFollow(c, f, splice)
	default:
		return fmt.Errorf("unknown stream kind %q", hello[0])
	}
}

// replStream is the durable state of one stream's file: written is the
// bytes appended, synced those fsynced; the syncer fsyncs whenever written
// moves past synced.
type replStream struct {
	f       *os.File
	written atomic.Int64
	synced  atomic.Int64
	wake    chan struct{} // to the syncer: more was written
	done    chan struct{} // closed by the reader when the stream ends
	drop    bool          // drop fsynced pages from the page cache (a follower)
}

func newReplStream(f *os.File, drop bool) *replStream {
	return &replStream{f: f, wake: make(chan struct{}, 1), done: make(chan struct{}), drop: drop}
}

// readFrames reads frames from r, checks each batch's CRC, appends it to
// the file, hands the frame to each (for a leader: sends it to the
// followers) and wakes the syncer.
func (s *replStream) readFrames(r io.Reader, each func(frame []byte) error) error {
	defer close(s.done)
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	for {
		var l [4]byte
		n, err := readFrameLen(br, &l)
		if err != nil {
			return err
		}
		if cap(buf) < 4+n {
			buf = make([]byte, 4+n)
		}
		frame := buf[:4+n]
		copy(frame, l[:])
		if _, err := io.ReadFull(br, frame[4:]); err != nil {
			return err
		}
		body := frame[4:]
		if !batchCRCOK(body) {
			return fmt.Errorf("batch at byte %d: CRC mismatch", s.written.Load())
		}
		if _, err := s.f.Write(body); err != nil {
			return err
		}
		if each != nil {
			if err := each(frame); err != nil {
				return err
			}
		}
		s.appended(n)
	}
}

// appended counts n more bytes written and wakes the syncer.
func (s *replStream) appended(n int) {
	s.written.Add(int64(n))
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// syncLoop fsyncs what was written, calling synced after each fsync,
// until the reader is done and everything written is synced.
func (s *replStream) syncLoop(synced func(int64) error) error {
	for {
		select {
		case <-s.wake:
		case <-s.done:
			if s.synced.Load() == s.written.Load() {
				return nil
			}
		}
		w := s.written.Load()
		if w == s.synced.Load() {
			continue
		}
		if err := s.f.Sync(); err != nil {
			return err
		}
		if s.drop {
			dropCached(s.f, s.synced.Load(), w)
		}
		s.synced.Store(w)
		if err := synced(w); err != nil {
			return err
		}
	}
}

func putAck(w io.Writer, n int64) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	_, err := w.Write(b[:])
	return err
}

// replFollow appends a leader's frames and answers with the bytes fsynced.
func replFollow(c net.Conn, f *os.File, splice bool) error {
	s := newReplStream(f, true)
	syncErr := make(chan error, 1)
	go func() { syncErr <- s.syncLoop(func(n int64) error { return putAck(c, n) }) }()
	var err error
	if tc, ok := c.(*net.TCPConn); ok && splice {
		err = s.spliceFrames(tc)
	} else {
		err = s.readFrames(c, nil)
	}
	return errors.Join(ignoreEOF(err), <-syncErr)
}

// replLead appends a client's frames, sends them to the followers, and
// acknowledges to the client what every replica has fsynced.
func replLead(c net.Conn, f *os.File, fs []net.Conn) error {
	s := newReplStream(f, false)
	var mu sync.Mutex // guards acked and the writes to c
	acked := int64(0)
	durable := make([]atomic.Int64, len(fs))
	ack := func() error {
		m := s.synced.Load()
		for i := range durable {
			m = min(m, durable[i].Load())
		}
		mu.Lock()
		defer mu.Unlock()
		if m <= acked {
			return nil
		}
		acked = m
		return putAck(c, m)
	}
	errs := make(chan error, 1+len(fs))
	go func() { errs <- s.syncLoop(func(int64) error { return ack() }) }()
	for i, fc := range fs {
		go func() {
			var b [8]byte
			for {
				if _, err := io.ReadFull(fc, b[:]); err != nil {
					select {
					case <-s.done:
					default:
						// The follower left before the stream ended: end
						// the client's stream too, instead of never
						// acknowledging it.
						_ = c.Close()
						err = fmt.Errorf("follower %s: %w", fc.RemoteAddr(), err)
					}
					errs <- ignoreEOF(err)
					return
				}
				durable[i].Store(int64(binary.BigEndian.Uint64(b[:])))
				if err := ack(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	err := s.readFrames(c, func(frame []byte) error {
		for _, fc := range fs {
			if _, err := fc.Write(frame); err != nil {
				return err
			}
		}
		return nil
	})
	for _, fc := range fs {
		if tc, ok := fc.(*net.TCPConn); ok {
			_ = tc.CloseWrite() // the follower's reader ends, then its acks
		}
	}
	err = ignoreEOF(err)
	for range 1 + len(fs) {
		err = errors.Join(err, <-errs)
	}
	return err
}

func ignoreEOF(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
