package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Environment variables of the client commands' security settings (the
// password only from the environment or a file, never a flag value).
const (
	envTLS          = "WEIR_TLS"
	envTLSCA        = "WEIR_TLS_CA"
	envTLSCert      = "WEIR_TLS_CERT"
	envTLSKey       = "WEIR_TLS_KEY"
	envSASLMech     = "WEIR_SASL_MECHANISM"
	envSASLUser     = "WEIR_SASL_USER"
	envSASLPassword = "WEIR_SASL_PASSWORD"
)

// clientSecurity is how the client commands reach a TLS or SASL listener.
type clientSecurity struct {
	tls          bool
	caFile       string
	certFile     string
	keyFile      string
	mechanism    string
	user         string
	passwordFile string
}

func (s *clientSecurity) register(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.BoolVar(&s.tls, "tls", false, "connect with TLS (default $"+envTLS+"=1; implied by --tls-ca and --tls-cert)")
	f.StringVar(&s.caFile, "tls-ca", "", "PEM CA certificates to verify the brokers with (default $"+envTLSCA+", else the system's)")
	f.StringVar(&s.certFile, "tls-cert", "", "PEM client certificate for mutual TLS (default $"+envTLSCert+")")
	f.StringVar(&s.keyFile, "tls-key", "", "PEM key of --tls-cert (default $"+envTLSKey+")")
	f.StringVar(&s.mechanism, "sasl-mechanism", "", "authenticate with SASL: SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN (default $"+envSASLMech+")")
	f.StringVar(&s.user, "sasl-user", "", "the SASL user (default $"+envSASLUser+")")
	f.StringVar(&s.passwordFile, "sasl-password-file", "", "read the SASL password from this file (default $"+envSASLPassword+")")
}

// orEnv returns v, or the environment variable name when v is empty.
func orEnv(v, name string) string {
	if v != "" {
		return v
	}
	return os.Getenv(name)
}

// opts returns the franz-go options of the settings.
func (s *clientSecurity) opts() ([]kgo.Opt, error) {
	var out []kgo.Opt
	ca, cert, key := orEnv(s.caFile, envTLSCA), orEnv(s.certFile, envTLSCert), orEnv(s.keyFile, envTLSKey)
	if s.tls || os.Getenv(envTLS) == "1" || ca != "" || cert != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if ca != "" {
			pem, err := os.ReadFile(ca)
			if err != nil {
				return nil, fmt.Errorf("--tls-ca: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--tls-ca %s: no PEM certificate in it", ca)
			}
		}
		if (cert == "") != (key == "") {
			return nil, errors.New("--tls-cert and --tls-key go together")
		}
		if cert != "" {
			kp, err := tls.LoadX509KeyPair(cert, key)
			if err != nil {
				return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
			}
			cfg.Certificates = []tls.Certificate{kp}
		}
		out = append(out, kgo.DialTLSConfig(cfg))
	}
	mech := strings.ToUpper(orEnv(s.mechanism, envSASLMech))
	if mech == "" {
		return out, nil
	}
	user := orEnv(s.user, envSASLUser)
	if user == "" {
		return nil, errors.New("--sasl-mechanism needs --sasl-user (or $" + envSASLUser + ")")
	}
	pass := os.Getenv(envSASLPassword)
	if s.passwordFile != "" {
		b, err := os.ReadFile(s.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("--sasl-password-file: %w", err)
		}
		pass, _, _ = strings.Cut(string(b), "\n")
		pass = strings.TrimRight(pass, "\r")
	}
	if pass == "" {
		return nil, errors.New("no SASL password: give --sasl-password-file or set $" + envSASLPassword + " (never on the command line)")
	}
	switch mech {
	case "SCRAM-SHA-512":
		out = append(out, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()))
	case "SCRAM-SHA-256":
		out = append(out, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()))
	case "PLAIN":
		out = append(out, kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()))
	default:
		return nil, fmt.Errorf("--sasl-mechanism %q: want SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN", mech)
	}
	return out, nil
}
