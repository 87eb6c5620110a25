package runtime

import (
	"crypto/tls"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// The SASL mechanisms SASL accepts.
const (
	SASLPlain       = "PLAIN"
	SASLSCRAMSHA256 = "SCRAM-SHA-256"
	SASLSCRAMSHA512 = "SCRAM-SHA-512"
)

// TLS makes every client the application creates (its main consumer and
// producer, standby and global-table readers, restore readers, the admin
// client) connect over TLS with cfg: the brokers' SSL or SASL_SSL
// listener. A nil cfg trusts the system's roots; set RootCAs for a private
// CA and Certificates for a client certificate (mutual TLS). Needs
// Brokers (the embedded broker speaks plaintext on loopback). Default:
// plaintext.
func TLS(cfg *tls.Config) Option {
	return optFunc(func(c *config) {
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		c.security = true
		c.app.ClientOpts = append(c.app.ClientOpts, kgo.DialTLSConfig(cfg.Clone()))
	})
}

// SASL makes every client the application creates authenticate as user
// with mechanism (SASLPlain, SASLSCRAMSHA256 or SASLSCRAMSHA512) on the
// brokers' SASL_PLAINTEXT or SASL_SSL listener; with TLS for SASL_SSL.
// Read the password from a file or the environment, never a command line.
// Needs Brokers. Default: no SASL.
func SASL(mechanism, user, password string) Option {
	return optFunc(func(c *config) {
		var m sasl.Mechanism
		switch mechanism {
		case SASLPlain:
			m = plain.Auth{User: user, Pass: password}.AsMechanism()
		case SASLSCRAMSHA256:
			m = scram.Auth{User: user, Pass: password}.AsSha256Mechanism()
		case SASLSCRAMSHA512:
			m = scram.Auth{User: user, Pass: password}.AsSha512Mechanism()
		default:
			c.errs = append(c.errs, fmt.Errorf("runtime: SASL mechanism %q: want %s, %s or %s", mechanism, SASLPlain, SASLSCRAMSHA256, SASLSCRAMSHA512))
			return
		}
		if user == "" {
			c.errs = append(c.errs, fmt.Errorf("runtime: SASL %s: empty user name", mechanism))
			return
		}
		c.security = true
		c.app.ClientOpts = append(c.app.ClientOpts, kgo.SASL(m))
	})
}
