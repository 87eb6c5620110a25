package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestOptionsValidateConfigMistakes: settings that would be ignored or
// that no broker can serve are refused, all of them in one error.
func TestOptionsValidateConfigMistakes(t *testing.T) {
	opts := Options{
		Fsync:                  FsyncGroup,
		FsyncInterval:          5 * time.Second,
		DefaultPartitions:      -1,
		MaxPartitionsPerTopic:  100,
		MaxPartitionsPerBroker: 50,
		OffsetsTopicPartitions: 200,
	}
	opts.EnsureDefaults()
	err := opts.Validate()
	if err == nil {
		t.Fatal("Validate accepted every mistake")
	}
	for _, want := range []string{
		`fsync interval 5s given with fsync policy "group", which would ignore it`,
		"default partitions -1 outside 1..100",
		"max partitions per topic 100 outside 1..50",
		"offsets topic partitions 200 outside 1..100",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v\nwant it to say %q", err, want)
		}
	}

	// The defaults, and an interval with its own policy, are fine; the
	// interval defaults only under that policy.
	for _, o := range []Options{{}, {Fsync: FsyncInterval}, {Fsync: FsyncInterval, FsyncInterval: 200 * time.Millisecond}, {Fsync: FsyncNever}} {
		o.EnsureDefaults()
		if err := o.Validate(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
	o := Options{}
	o.EnsureDefaults()
	if o.FsyncInterval != 0 || o.MaxPartitionsPerTopic != 10000 || o.MaxPartitionsPerBroker != 50000 {
		t.Fatalf("defaults: fsync interval %v, max partitions per topic %d, per broker %d", o.FsyncInterval, o.MaxPartitionsPerTopic, o.MaxPartitionsPerBroker)
	}
	o = Options{Fsync: FsyncInterval}
	o.EnsureDefaults()
	if o.FsyncInterval != time.Second {
		t.Fatalf("fsync interval default under interval: %v, want 1s", o.FsyncInterval)
	}
}

// TestCreateTopicsPartitionLimits: a partition count past the broker's
// limits is answered INVALID_PARTITIONS with a message giving the limit.
func TestCreateTopicsPartitionLimits(t *testing.T) {
	b := startBroker(t, Options{MaxPartitionsPerTopic: 20, MaxPartitionsPerBroker: 100})
	ctx := testCtx(t)
	adm := kadm.NewClient(newClient(t, b))
	check := func(what string, err error, msg string, wantMsg string) {
		t.Helper()
		if err != kerr.InvalidPartitions || !strings.Contains(msg, wantMsg) {
			t.Fatalf("%s: %v %q, want INVALID_PARTITIONS saying %q", what, err, msg, wantMsg)
		}
	}
	resp, err := adm.CreateTopics(ctx, 1_000_000, 1, nil, "huge")
	if err != nil {
		t.Fatal(err)
	}
	check("a million partitions", resp["huge"].Err, resp["huge"].ErrMessage, `1000000 partitions requested for "huge", at most 20 per topic`)
	resp, err = adm.ValidateCreateTopics(ctx, 21, 1, nil, "huge")
	if err != nil {
		t.Fatal(err)
	}
	check("validate 21 partitions", resp["huge"].Err, resp["huge"].ErrMessage, "at most 20 per topic")

	if _, err := adm.CreateTopic(ctx, 20, 1, nil, "twenty"); err != nil {
		t.Fatal(err)
	}
	cr, err := adm.UpdatePartitions(ctx, 21, "twenty")
	if err != nil {
		t.Fatal(err)
	}
	check("grow to 21", cr["twenty"].Err, cr["twenty"].ErrMessage, `21 partitions requested for "twenty", at most 20 per topic`)

	// The per-broker limit counts every topic, __consumer_offsets too
	// once it exists; fill the broker up to it.
	var made []string
	for i := 0; ; i++ {
		name := "fill-" + itoa(int32(i))
		resp, err := adm.CreateTopics(ctx, 20, 1, nil, name)
		if err != nil {
			t.Fatal(err)
		}
		if resp[name].Err != nil {
			check("past the broker's limit", resp[name].Err, resp[name].ErrMessage, "partitions on this broker, at most 100")
			break
		}
		made = append(made, name)
		if len(made) > 5 {
			t.Fatalf("created %v past a 100-partition broker limit", made)
		}
	}
	if len(made) != 4 {
		t.Fatalf("created %d topics of 20 beside one of 20 under a 100-partition limit, want 4", len(made))
	}
}

// TestCreateTopicsNameCollision: a name that differs from an existing
// topic's only in '.' against '_' is refused with INVALID_TOPIC_EXCEPTION
// naming that topic, whether created, validated or auto-created.
func TestCreateTopicsNameCollision(t *testing.T) {
	b := startBroker(t, Options{})
	ctx := testCtx(t)
	adm := kadm.NewClient(newClient(t, b))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "orders.eu"); err != nil {
		t.Fatal(err)
	}
	for _, validate := range []bool{false, true} {
		create := adm.CreateTopics
		if validate {
			create = adm.ValidateCreateTopics
		}
		resp, err := create(ctx, 1, 1, nil, "orders_eu")
		if err != nil {
			t.Fatal(err)
		}
		r := resp["orders_eu"]
		if r.Err != kerr.InvalidTopicException || !strings.Contains(r.ErrMessage, `collides with existing topic "orders.eu"`) {
			t.Fatalf("validate-only %v: %v %q, want INVALID_TOPIC_EXCEPTION naming orders.eu", validate, r.Err, r.ErrMessage)
		}
	}
	// Auto-creation through Metadata refuses it too.
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = true
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("orders_eu")
	req.Topics = append(req.Topics, rt)
	md, err := req.RequestWith(ctx, newClient(t, b))
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Topics) != 1 || md.Topics[0].ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("metadata auto-create of orders_eu: %+v, want INVALID_TOPIC_EXCEPTION", md.Topics)
	}
	td, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := td["orders_eu"]; ok {
		t.Fatal("orders_eu was created")
	}
}
