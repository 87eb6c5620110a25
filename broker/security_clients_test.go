package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// extSecure is a broker for the external clients: one SASL_SSL listener
// (certificates from a test CA), the authorizer on, the SCRAM-SHA-512 users
// admin (a super user), app (allowed READ, WRITE and DESCRIBE on the topics
// and groups prefixed "ext-") and nobody (no ACLs), and the topics ext-a,
// ext-b and payments.
type extSecure struct {
	b    *Broker
	pki  *testPKI
	addr string
}

const extPassword = "app-Secret-1"

func newExtSecure(t *testing.T) *extSecure {
	t.Helper()
	dir := t.TempDir()
	for u, pw := range map[string]string{"admin": "admin-pw", "app": extPassword, "nobody": "nobody-pw"} {
		if err := SetSCRAMUser(dir, u, SCRAMSHA512, pw, 4096); err != nil {
			t.Fatal(err)
		}
	}
	if err := AddACLs(dir, prefixedACLs("User:app", "ext-")); err != nil {
		t.Fatal(err)
	}
	pki := newTestPKI(t)
	b := openSecure(t, Options{DataDir: dir, Listeners: []Listener{{Name: "SECURE", Protocol: "SASL_SSL", Addr: "127.0.0.1:0"}},
		TLSCertFile: pki.certFile, TLSKeyFile: pki.keyFile, Authorizer: true, SuperUsers: []string{"User:admin"},
		GroupInitialRebalanceDelay: -1})
	e := &extSecure{b: b, pki: pki, addr: b.Addr()}
	adm := kadm.NewClient(e.franz(t, "admin", "admin-pw"))
	if _, err := adm.CreateTopics(testCtx(t), 1, 1, nil, "ext-a", "ext-b", "payments"); err != nil {
		t.Fatal(err)
	}
	return e
}

// prefixedACLs allows principal READ, WRITE and DESCRIBE on the topics and
// groups named with prefix.
func prefixedACLs(principal, prefix string) []ACL {
	var out []ACL
	for _, rt := range []ResourceTypeName{"TOPIC", "GROUP"} {
		for _, op := range []string{"READ", "WRITE", "DESCRIBE"} {
			a, err := ParseACL(string(rt), prefix, "PREFIXED", principal, "*", op, "ALLOW")
			if err != nil {
				panic(err)
			}
			out = append(out, a)
		}
	}
	return out
}

// franz is a franz-go client of the SASL_SSL listener.
func (e *extSecure) franz(t *testing.T, user, pass string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(e.addr), kgo.DialTLSConfig(e.pki.clientTLS()),
		kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// librdkafkaConf writes a librdkafka configuration file for user.
func (e *extSecure) librdkafkaConf(t *testing.T, user, pass string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), user+".conf")
	conf := fmt.Sprintf("security.protocol=SASL_SSL\nsasl.mechanisms=SCRAM-SHA-512\nsasl.username=%s\nsasl.password=%s\nssl.ca.location=%s\n",
		user, pass, e.pki.caFile)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runFail runs a client program expected to fail and returns its
// combined output.
func runFail(t *testing.T, stdin, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("%s %s succeeded, want a failure:\n%s", name, strings.Join(args, " "), out)
	}
	return string(out)
}

// kcatTopics lists the topics kcat -L -J shows.
func kcatTopics(t *testing.T, kcat, addr, conf string) []string {
	t.Helper()
	got, err := kcatTopicsErr(kcat, addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// kcatTopicsErr lists the topics kcat -L -J shows, or says why kcat
// failed (as it does while the broker it asks has not yet learnt of the
// user, in a cluster).
func kcatTopicsErr(kcat, addr, conf string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, kcat, "-F", conf, "-b", addr, "-L", "-J")
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("kcat -L: %v\nstderr:\n%s", err, errb.String())
	}
	var md struct {
		Topics []struct {
			Topic string `json:"topic"`
		} `json:"topics"`
	}
	if err := json.Unmarshal(out.Bytes(), &md); err != nil {
		return nil, fmt.Errorf("kcat -L -J: %v", err)
	}
	var names []string
	for _, tp := range md.Topics {
		names = append(names, tp.Topic)
	}
	slices.Sort(names)
	return names, nil
}

func TestKcatSASLSSL(t *testing.T) {
	kcat := requireTool(t, "kcat", "apt-get install kcat")
	e := newExtSecure(t)
	app := e.librdkafkaConf(t, "app", extPassword)
	run(t, "k1:one\nk2:two\n", kcat, "-F", app, "-b", e.addr, "-t", "ext-a", "-P", "-K", ":")
	out := run(t, "", kcat, "-F", app, "-b", e.addr, "-C", "-t", "ext-a", "-o", "beginning", "-e", "-q", "-f", "%k:%s\n")
	if got := strings.Fields(out); !slices.Equal(got, []string{"k1:one", "k2:two"}) {
		t.Fatalf("kcat consumed %q", got)
	}
	// The prefixed ACL covers exactly ext-a and ext-b.
	if got := kcatTopics(t, kcat, e.addr, app); !slices.Equal(got, []string{"ext-a", "ext-b"}) {
		t.Fatalf("app's kcat -L lists %v, want [ext-a ext-b]", got)
	}
	if got := kcatTopics(t, kcat, e.addr, e.librdkafkaConf(t, "nobody", "nobody-pw")); len(got) != 0 {
		t.Fatalf("nobody's kcat -L lists %v, want none", got)
	}
	out = runFail(t, "x\n", kcat, "-F", app, "-b", e.addr, "-P", "-t", "payments", "-X", "message.timeout.ms=5000")
	if !strings.Contains(out, "Topic authorization failed") && !strings.Contains(out, "TOPIC_AUTHORIZATION_FAILED") {
		t.Fatalf("kcat producing to payments:\n%s\nwant a topic authorization failure", out)
	}
	bad := e.librdkafkaConf(t, "app", "wrong")
	out = runFail(t, "", kcat, "-F", bad, "-b", e.addr, "-L", "-m", "5")
	if !strings.Contains(out, "Authentication failed") {
		t.Fatalf("kcat with a wrong password:\n%s\nwant an authentication failure", out)
	}
}

// confluentSecure produces to ext-a and consumes it back in group ext-g,
// lists the topics it sees, and prints JSON.
const confluentSecure = `
import json, sys
from confluent_kafka import Producer, Consumer, KafkaException
addr, ca, user, pw = sys.argv[1:5]
conf = {'bootstrap.servers': addr, 'security.protocol': 'SASL_SSL', 'sasl.mechanisms': 'SCRAM-SHA-512',
        'sasl.username': user, 'sasl.password': pw, 'ssl.ca.location': ca}
errors = []
def on_error(err):
    errors.append(err.name())
if len(sys.argv) > 5:  # only check authentication
    c = Consumer(dict(conf, **{'group.id': 'ext-x', 'error_cb': on_error}))
    c.subscribe(['ext-a'])
    for _ in range(20):  # error callbacks are served by poll
        c.poll(0.25)
        if '_AUTHENTICATION' in errors: break
    print(json.dumps({'errors': errors}))
    sys.exit(0)
p = Producer(dict(conf, error_cb=on_error))
delivered = []
p.produce('ext-a', key=b'k', value=b'from confluent', on_delivery=lambda err, m: delivered.append(err is None))
p.flush(20)
c = Consumer(dict(conf, **{'group.id': 'ext-g', 'auto.offset.reset': 'earliest', 'error_cb': on_error}))
topics = sorted(c.list_topics(timeout=10).topics)
c.subscribe(['ext-a'])
got = []
for _ in range(40):
    m = c.poll(0.5)
    if m is None:
        if got: break
        continue
    if m.error():
        errors.append(m.error().name()); break
    got.append(m.value().decode())
c.commit(asynchronous=False)
c.close()
print(json.dumps({'delivered': delivered, 'topics': topics, 'consumed': got, 'errors': errors}))
`

func TestConfluentKafkaSASLSSL(t *testing.T) {
	py := requireConfluentKafka(t)
	e := newExtSecure(t)
	var res struct {
		Delivered []bool   `json:"delivered"`
		Topics    []string `json:"topics"`
		Consumed  []string `json:"consumed"`
		Errors    []string `json:"errors"`
	}
	out := run(t, "", py, "-c", confluentSecure, e.addr, e.pki.caFile, "app", extPassword)
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !slices.Equal(res.Delivered, []bool{true}) || !slices.Contains(res.Consumed, "from confluent") ||
		!slices.Equal(res.Topics, []string{"ext-a", "ext-b"}) || len(res.Errors) != 0 {
		t.Fatalf("confluent-kafka as app: %+v", res)
	}
	// The group's offset was committed under the ACL.
	offs, err := kadm.NewClient(e.franz(t, "admin", "admin-pw")).FetchOffsets(testCtx(t), "ext-g")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup("ext-a", 0); !ok || o.At < 1 {
		t.Fatalf("ext-g's committed offset of ext-a: %+v %v", o, ok)
	}
	out = run(t, "", py, "-c", confluentSecure, e.addr, e.pki.caFile, "app", "wrong", "auth-only")
	if !strings.Contains(out, "_AUTHENTICATION") {
		t.Fatalf("confluent-kafka with a wrong password: %s, want an authentication error", out)
	}
}

// kafkaPythonSecure produces and consumes over SASL_SSL/SCRAM-SHA-512 and
// prints JSON; with a fifth argument it only connects and prints the
// error.
const kafkaPythonSecure = `
import json, sys
from kafka import KafkaProducer, KafkaConsumer
addr, ca, user, pw = sys.argv[1:5]
conf = dict(bootstrap_servers=[addr], security_protocol='SASL_SSL', sasl_mechanism='SCRAM-SHA-512',
            sasl_plain_username=user, sasl_plain_password=pw, ssl_cafile=ca)
if len(sys.argv) > 5:
    try:
        KafkaConsumer(**conf).topics()
        print(json.dumps({'error': ''}))
    except Exception as e:
        print(json.dumps({'error': type(e).__name__ + ': ' + str(e)}))
    sys.exit(0)
p = KafkaProducer(acks='all', **conf)
p.send('ext-b', b'from kafka-python').get(timeout=20)
p.flush()
c = KafkaConsumer('ext-b', group_id='ext-py', auto_offset_reset='earliest', consumer_timeout_ms=5000, **conf)
got = [m.value.decode() for m in c]
topics = sorted(c.topics())
c.close()
print(json.dumps({'consumed': got, 'topics': topics}))
`

func TestKafkaPythonSASLSSL(t *testing.T) {
	py := requirePythonKafka(t)
	e := newExtSecure(t)
	var res struct {
		Consumed []string `json:"consumed"`
		Topics   []string `json:"topics"`
		Error    string   `json:"error"`
	}
	out := run(t, "", py, "-c", kafkaPythonSecure, e.addr, e.pki.caFile, "app", extPassword)
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !slices.Equal(res.Consumed, []string{"from kafka-python"}) || !slices.Equal(res.Topics, []string{"ext-a", "ext-b"}) {
		t.Fatalf("kafka-python as app: %+v", res)
	}
	out = run(t, "", py, "-c", kafkaPythonSecure, e.addr, e.pki.caFile, "app", "wrong", "auth-only")
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(res.Error, "Authentication failed") && !strings.Contains(res.Error, "SaslAuthenticationFailed") &&
		!strings.Contains(res.Error, "NoBrokersAvailable") {
		t.Fatalf("kafka-python with a wrong password: %q", res.Error)
	}
}

// franz-go over SASL_SSL with SCRAM-SHA-512 against the same broker: the
// group consumer of app works on ext- topics and is refused elsewhere.
func TestFranzGoSASLSSLACLs(t *testing.T) {
	e := newExtSecure(t)
	ctx := testCtx(t)
	app := e.franz(t, "app", extPassword, kgo.DefaultProduceTopic("ext-a"))
	if err := app.ProduceSync(ctx, &kgo.Record{Value: []byte("from franz")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cons := e.franz(t, "app", extPassword, kgo.ConsumerGroup("ext-franz"), kgo.ConsumeTopics("ext-a"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fs := cons.PollFetches(ctx)
	if err := fs.Err(); err != nil || len(fs.Records()) == 0 {
		t.Fatalf("app's group consumer: %v, %d records", err, len(fs.Records()))
	}
	if err := app.ProduceSync(ctx, &kgo.Record{Topic: "payments", Value: []byte("x")}).FirstErr(); err == nil ||
		!strings.Contains(err.Error(), "TOPIC_AUTHORIZATION_FAILED") {
		t.Fatalf("app produces to payments: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
}
