package runtime_test

import (
	"strings"
	"testing"

	"github.com/weir-dev/weir/examples/orders-per-minute/orders"
	"github.com/weir-dev/weir/runtime"
)

// TestSecurityOptionsRefused: an unknown SASL mechanism, an empty user,
// and TLS or SASL without Brokers (the embedded broker is plaintext) are
// refused by New, each named. (The options at work:
// broker.TestRuntimeOverSASLSSLWithACLs.)
func TestSecurityOptionsRefused(t *testing.T) {
	topo, err := orders.Topology(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		opts []runtime.Option
		want string
	}{
		{[]runtime.Option{runtime.Brokers("127.0.0.1:1"), runtime.SASL("GSSAPI", "app", "pw")}, `SASL mechanism "GSSAPI"`},
		{[]runtime.Option{runtime.Brokers("127.0.0.1:1"), runtime.SASL(runtime.SASLSCRAMSHA512, "", "pw")}, "empty user name"},
		{[]runtime.Option{runtime.TLS(nil)}, "TLS and SASL need Brokers"},
		{[]runtime.Option{runtime.SASL(runtime.SASLPlain, "app", "pw")}, "TLS and SASL need Brokers"},
	} {
		_, err := runtime.New(topo, append([]runtime.Option{runtime.ApplicationID("sec"), runtime.StateDir(t.TempDir())}, c.opts...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New: %v, want an error saying %q", err, c.want)
		}
	}
}
