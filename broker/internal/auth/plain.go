package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"os"
	"strings"
)

// PlainUsers are the PLAIN mechanism's credentials, read from a file of
// "user:password" lines ('#' starts a comment line). The file is the
// secret: keep it readable by the broker alone.
type PlainUsers struct {
	users map[string][32]byte // user -> SHA-256 of the password
}

// LoadPlainUsers reads a PLAIN credentials file.
func LoadPlainUsers(path string) (*PlainUsers, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: PLAIN credentials: %w", err)
	}
	p := &PlainUsers{users: map[string][32]byte{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		u, pw, ok := strings.Cut(line, ":")
		if !ok || u == "" || pw == "" {
			return nil, fmt.Errorf("auth: PLAIN credentials %s:%d: want user:password", path, n)
		}
		if _, dup := p.users[u]; dup {
			return nil, fmt.Errorf("auth: PLAIN credentials %s:%d: user %q listed twice", path, n, u)
		}
		p.users[u] = sha256.Sum256([]byte(pw))
	}
	return p, sc.Err()
}

// Check reports whether password is user's, in time that does not depend
// on how much of it matches.
func (p *PlainUsers) Check(user, password string) bool {
	want, ok := p.users[user]
	got := sha256.Sum256([]byte(password))
	return subtle.ConstantTimeCompare(want[:], got[:]) == 1 && ok
}

// ParsePlain splits a PLAIN initial response (RFC 4616:
// authzid NUL authcid NUL passwd). An authorization identity other than
// empty or the user itself is refused.
func ParsePlain(b []byte) (user, password string, err error) {
	parts := bytes.Split(b, []byte{0})
	if len(parts) != 3 {
		return "", "", fmt.Errorf("auth: PLAIN message has %d fields, want 3", len(parts))
	}
	authz, u, pw := string(parts[0]), string(parts[1]), string(parts[2])
	if u == "" || pw == "" {
		return "", "", fmt.Errorf("auth: PLAIN message with an empty user or password")
	}
	if authz != "" && authz != u {
		return "", "", fmt.Errorf("auth: PLAIN authorization identity %q differs from the user", authz)
	}
	return u, pw, nil
}
