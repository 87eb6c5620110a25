package auth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"os"
	"sort"
	"sync"

	"github.com/xdg-go/scram"

	"github.com/weir-dev/weir/internal/atomicfile"
)

// UsersFile is the name of the SCRAM credentials file in a single-node
// broker's data directory.
const UsersFile = "scram-users.json"

// SCRAM mechanisms, as SASL names them.
const (
	SCRAMSHA256 = "SCRAM-SHA-256"
	SCRAMSHA512 = "SCRAM-SHA-512"
)

// Iteration bounds of SCRAM credentials (Kafka's: 4096 to 16384).
const (
	MinIterations     = 4096
	MaxIterations     = 16384
	DefaultIterations = 8192
)

// Credential is one user's SCRAM credential for one mechanism: never the
// password, only its salt and the keys derived from the salted password
// (RFC 5802).
type Credential struct {
	Salt       []byte `json:"salt"`
	StoredKey  []byte `json:"stored_key"`
	ServerKey  []byte `json:"server_key"`
	Iterations int    `json:"iterations"`
}

// hashOf returns the hash function of a SCRAM mechanism.
func hashOf(mech string) (func() hash.Hash, scram.HashGeneratorFcn, bool) {
	switch mech {
	case SCRAMSHA256:
		return sha256.New, scram.SHA256, true
	case SCRAMSHA512:
		return sha512.New, scram.SHA512, true
	}
	return nil, nil, false
}

// CredentialFromSalted derives the stored credential from a salted
// password (what AlterUserScramCredentials carries).
func CredentialFromSalted(mech string, salt, saltedPassword []byte, iterations int) (Credential, error) {
	h, _, ok := hashOf(mech)
	if !ok {
		return Credential{}, fmt.Errorf("auth: unknown SCRAM mechanism %q (want %s or %s)", mech, SCRAMSHA256, SCRAMSHA512)
	}
	if iterations < MinIterations || iterations > MaxIterations {
		return Credential{}, fmt.Errorf("auth: %d iterations outside %d..%d", iterations, MinIterations, MaxIterations)
	}
	if len(salt) == 0 || len(saltedPassword) == 0 {
		return Credential{}, errors.New("auth: empty salt or salted password")
	}
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(h, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	clientKey := mac(saltedPassword, "Client Key")
	sum := h()
	sum.Write(clientKey)
	return Credential{Salt: salt, StoredKey: sum.Sum(nil), ServerKey: mac(saltedPassword, "Server Key"), Iterations: iterations}, nil
}

// NewCredential salts and hashes password for mech with a fresh random
// salt.
func NewCredential(mech, password string, iterations int) (Credential, error) {
	h, _, ok := hashOf(mech)
	if !ok {
		return Credential{}, fmt.Errorf("auth: unknown SCRAM mechanism %q (want %s or %s)", mech, SCRAMSHA256, SCRAMSHA512)
	}
	if password == "" {
		return Credential{}, errors.New("auth: empty password")
	}
	salt := make([]byte, 24)
	if _, err := rand.Read(salt); err != nil {
		return Credential{}, err
	}
	salted, err := pbkdf2.Key(h, password, salt, iterations, h().Size())
	if err != nil {
		return Credential{}, fmt.Errorf("auth: salt password: %w", err)
	}
	return CredentialFromSalted(mech, salt, salted, iterations)
}

// usersFile is the on-disk form of the SCRAM credentials: user, then
// mechanism.
type usersFile struct {
	Version int                              `json:"version"`
	Users   map[string]map[string]Credential `json:"users"`
}

// UserStore keeps SCRAM credentials in a file of the data directory,
// written whole with atomicfile (mode 0600) on every change.
type UserStore struct {
	path  string
	mu    sync.Mutex
	users map[string]map[string]Credential // guarded by mu
}

// OpenUserStore reads path (missing: no users yet).
func OpenUserStore(path string) (*UserStore, error) {
	s := &UserStore{path: path, users: map[string]map[string]Credential{}}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("auth: read SCRAM users: %w", err)
	default:
		var f usersFile
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("auth: SCRAM users file %s: %w", path, err)
		}
		for u, ms := range f.Users {
			for m, c := range ms {
				if _, _, ok := hashOf(m); !ok || len(c.Salt) == 0 || len(c.StoredKey) == 0 || len(c.ServerKey) == 0 {
					return nil, fmt.Errorf("auth: SCRAM users file %s: user %q, mechanism %q: bad entry", path, u, m)
				}
			}
		}
		if f.Users != nil {
			s.users = f.Users
		}
	}
	return s, nil
}

// Lookup returns user's credential for mech.
func (s *UserStore) Lookup(user, mech string) (Credential, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.users[user][mech]
	return c, ok
}

// UserInfo is what may be told of a user: its mechanisms and iterations.
type UserInfo struct {
	Name       string
	Mechanisms map[string]int // mechanism -> iterations
}

// List returns every user, sorted by name.
func (s *UserStore) List() []UserInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]UserInfo, 0, len(s.users))
	for u, ms := range s.users {
		ui := UserInfo{Name: u, Mechanisms: map[string]int{}}
		for m, c := range ms {
			ui.Mechanisms[m] = c.Iterations
		}
		out = append(out, ui)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Change is one upsertion (Cred set) or deletion (Cred nil) of a user's
// credential for a mechanism.
type Change struct {
	User string
	Mech string
	Cred *Credential
}

// Apply applies changes in order and writes the file once. A deletion of
// a missing credential is reported in the returned per-change errors; the
// others are applied.
func (s *UserStore) Apply(changes []Change) ([]error, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := map[string]map[string]Credential{}
	for u, ms := range s.users {
		next[u] = map[string]Credential{}
		for m, c := range ms {
			next[u][m] = c
		}
	}
	errs := make([]error, len(changes))
	for i, ch := range changes {
		if _, _, ok := hashOf(ch.Mech); !ok {
			errs[i] = fmt.Errorf("auth: unknown SCRAM mechanism %q", ch.Mech)
			continue
		}
		if ch.User == "" {
			errs[i] = errors.New("auth: empty user name")
			continue
		}
		if ch.Cred == nil {
			if _, ok := next[ch.User][ch.Mech]; !ok {
				errs[i] = ErrNoCredential
				continue
			}
			delete(next[ch.User], ch.Mech)
			if len(next[ch.User]) == 0 {
				delete(next, ch.User)
			}
			continue
		}
		if next[ch.User] == nil {
			next[ch.User] = map[string]Credential{}
		}
		next[ch.User][ch.Mech] = *ch.Cred
	}
	b, err := json.MarshalIndent(usersFile{Version: 1, Users: next}, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(s.path, b); err != nil {
		return nil, fmt.Errorf("auth: write SCRAM users: %w", err)
	}
	if err := os.Chmod(s.path, 0o600); err != nil {
		return nil, fmt.Errorf("auth: SCRAM users file: %w", err)
	}
	s.users = next
	return errs, nil
}

// ErrNoCredential is a deletion of a credential that does not exist.
var ErrNoCredential = errors.New("auth: no such SCRAM credential")

// NewSCRAMConversation starts the server side of a SCRAM exchange for mech
// against the store. Step it with each client message; once Done, Valid
// says whether the client proved the password and Username names it.
func (s *UserStore) NewSCRAMConversation(mech string) (*scram.ServerConversation, error) {
	return NewSCRAMConversation(s, mech)
}

// NewSCRAMConversation starts the server side of a SCRAM exchange for mech
// against the credentials s.
func NewSCRAMConversation(s Credentials, mech string) (*scram.ServerConversation, error) {
	_, gen, ok := hashOf(mech)
	if !ok {
		return nil, fmt.Errorf("auth: unknown SCRAM mechanism %q", mech)
	}
	srv, err := gen.NewServer(func(user string) (scram.StoredCredentials, error) {
		c, ok := s.Lookup(user, mech)
		if !ok {
			return scram.StoredCredentials{}, fmt.Errorf("auth: unknown user")
		}
		return scram.StoredCredentials{
			KeyFactors: scram.KeyFactors{Salt: string(c.Salt), Iters: c.Iterations},
			StoredKey:  c.StoredKey, ServerKey: c.ServerKey,
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return srv.NewConversation(), nil
}
