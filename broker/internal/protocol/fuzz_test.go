package protocol

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/broker/internal/topics"
)

// frameFor encodes a request frame body (header v1/v2 plus body) as a
// client would, without the size prefix.
func frameFor(req kmsg.Request, version int16, corr int32, clientID string) []byte {
	req.SetVersion(version)
	var f []byte
	f = binary.BigEndian.AppendUint16(f, uint16(req.Key()))
	f = binary.BigEndian.AppendUint16(f, uint16(version))
	f = binary.BigEndian.AppendUint32(f, uint32(corr))
	f = binary.BigEndian.AppendUint16(f, uint16(len(clientID)))
	f = append(f, clientID...)
	if req.IsFlexible() {
		f = append(f, 0)
	}
	return req.AppendTo(f)
}

// seedFrames are valid frames of every registered key at its lowest and
// highest version.
func seedFrames() [][]byte {
	var out [][]byte
	for _, k := range supportedKeys() {
		for _, v := range []int16{k.MinVersion, k.MaxVersion} {
			req := kmsg.RequestForKey(k.ApiKey)
			if t, ok := req.(*kmsg.ProduceRequest); ok {
				rt := kmsg.NewProduceRequestTopic()
				rt.Topic = "t"
				rp := kmsg.NewProduceRequestTopicPartition()
				rp.Records = make([]byte, 70)
				rt.Partitions = append(rt.Partitions, rp)
				t.Topics = append(t.Topics, rt)
			}
			if t, ok := req.(*kmsg.MetadataRequest); ok {
				t.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("orders")}}
			}
			out = append(out, frameFor(req, v, 9, "fuzz"))
		}
	}
	return out
}

// FuzzDecodeFrame feeds arbitrary frame bytes to the decoder. Invariants:
// it never panics; a decoded request lies in the registered version range
// of its key; re-encoding the decoded body and decoding it again yields
// the same request (the decoder loses nothing it keeps); the early
// ApiVersions answer is only ever produced for ApiVersions.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range seedFrames() {
		f.Add(s)
	}
	f.Add([]byte{})
	f.Add([]byte{0, 18, 0, 99, 0, 0, 0, 1, 255, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		fr, err := decodeFrame(b)
		if !bytes.Equal(in, b) {
			t.Fatalf("decodeFrame modified its input")
		}
		if err != nil {
			if !IsFrameError(err) {
				t.Fatalf("error %v is not a frame error", err)
			}
			return
		}
		if fr.early != nil {
			if fr.req.Key != kmsg.ApiVersions.Int16() {
				t.Fatalf("early answer for key %d", fr.req.Key)
			}
			return
		}
		h, ok := lookupHandler(fr.req.Key)
		if !ok || fr.req.Version < h.minVersion || fr.req.Version > h.maxVersion {
			t.Fatalf("decoded key %d v%d outside the registered range", fr.req.Key, fr.req.Version)
		}
		enc := fr.req.Body.AppendTo(nil)
		again := kmsg.RequestForKey(fr.req.Key)
		again.SetVersion(fr.req.Version)
		if err := again.ReadFrom(enc); err != nil {
			t.Fatalf("re-decoding %s v%d: %v", kmsg.NameForKey(fr.req.Key), fr.req.Version, err)
		}
		if diff := cmp.Diff(fr.req.Body, again, cmp.Exporter(func(reflect.Type) bool { return true })); diff != "" {
			t.Fatalf("%s v%d changed across encode/decode:\n%s", kmsg.NameForKey(fr.req.Key), fr.req.Version, diff)
		}
	})
}

// FuzzSkipTags checks the tagged-field skipper: it never panics and what
// it returns is a suffix of its input.
func FuzzSkipTags(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{1, 0, 2, 'h', 'i', 7})
	f.Add([]byte{2, 0, 1, 'a', 1, 0, 9})
	f.Add([]byte{1, 0, 200, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		rest, err := skipTags(b)
		if err != nil {
			if !IsFrameError(err) {
				t.Fatalf("error %v is not a frame error", err)
			}
			return
		}
		if len(rest) > len(b) || !bytes.Equal(b[len(b)-len(rest):], rest) {
			t.Fatalf("rest is not a suffix of the input")
		}
	})
}

func TestSeedFramesDecode(t *testing.T) {
	for _, s := range seedFrames() {
		fr, err := decodeFrame(s)
		if err != nil {
			t.Fatalf("valid frame %x: %v", s[:4], err)
		}
		if fr.req.ClientID != "fuzz" || fr.req.CorrelationID != 9 {
			t.Fatalf("header decoded as %+v", fr.req)
		}
	}
}

// newFuzzServer returns a server over an in-memory-log registry in a temp
// dir.
func newFuzzServer(t testing.TB) *Server {
	t.Helper()
	reg, err := topics.Open(topics.Options{Dir: t.TempDir(), OpenLog: topics.OpenMemLog,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Topics: reg, Node: Node{ID: 0, Host: "127.0.0.1", Port: 9092},
		AutoCreateTopics: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		_ = reg.Close()
	})
	return s
}

// FuzzHandle runs every decodable frame through its handler. Invariants:
// no handler panics; every request but an acks=0 produce gets a response
// (an acks=0 produce of a refused version closes the connection instead),
// and that response encodes and decodes again at the request's version.
func FuzzHandle(f *testing.F) {
	for _, s := range seedFrames() {
		f.Add(s)
	}
	s := newFuzzServer(f)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // waits (fetch long polls) end at once
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := decodeFrame(b)
		if err != nil || fr.early != nil {
			return
		}
		if p, ok := fr.req.Body.(*kmsg.ProduceRequest); ok {
			// Keep the in-memory logs small across many runs.
			for i := range p.Topics {
				for j := range p.Topics[i].Partitions {
					if len(p.Topics[i].Partitions[j].Records) > 1<<16 {
						return
					}
				}
			}
		}
		c := &conn{s: s, log: s.Logger}
		type result struct {
			resp kmsg.Response
			err  error
		}
		done := make(chan result, 1)
		go func() {
			resp, err := c.call(ctx, fr)
			done <- result{resp, err}
		}()
		var resp kmsg.Response
		select {
		case r := <-done:
			resp, err = r.resp, r.err
		case <-time.After(10 * time.Second):
			// With its context already cancelled, a handler must not wait.
			t.Fatalf("%s v%d still running after 10s with a cancelled context", kmsg.NameForKey(fr.req.Key), fr.req.Version)
		}
		if err != nil {
			if p, ok := fr.req.Body.(*kmsg.ProduceRequest); ok && p.Acks == 0 && fr.req.Version < minProduceVersion {
				return // refused without an answer to give: the connection closes
			}
			t.Fatalf("%s v%d: %v", kmsg.NameForKey(fr.req.Key), fr.req.Version, err)
		}
		if resp == nil {
			if p, ok := fr.req.Body.(*kmsg.ProduceRequest); ok && p.Acks == 0 {
				return
			}
			t.Fatalf("%s v%d: no response", kmsg.NameForKey(fr.req.Key), fr.req.Version)
		}
		resp.SetVersion(fr.req.Version)
		enc := resp.AppendTo(nil)
		back := kmsg.ResponseForKey(fr.req.Key)
		back.SetVersion(fr.req.Version)
		if err := back.ReadFrom(enc); err != nil {
			t.Fatalf("%s v%d response does not decode: %v", kmsg.NameForKey(fr.req.Key), fr.req.Version, err)
		}
	})
}
