package auth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/xdg-go/scram"
)

// exchange runs a client conversation against the store's server side and
// reports whether the server accepted it.
func exchange(t testing.TB, s *UserStore, mech, user, pass string) bool {
	t.Helper()
	gen := scram.SHA256
	if mech == SCRAMSHA512 {
		gen = scram.SHA512
	}
	cl, err := gen.NewClient(user, pass, "")
	if err != nil {
		t.Fatal(err)
	}
	cc := cl.NewConversation()
	sc, err := s.NewSCRAMConversation(mech)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cc.Step("")
	for !sc.Done() && err == nil {
		var reply string
		if reply, err = sc.Step(msg); err != nil {
			break
		}
		if !sc.Done() {
			msg, err = cc.Step(reply)
		}
	}
	return err == nil && sc.Done() && sc.Valid() && sc.Username() == user
}

func TestSCRAMStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), UsersFile)
	s, err := OpenUserStore(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, mech := range []string{SCRAMSHA256, SCRAMSHA512} {
		c, err := NewCredential(mech, "pw-"+mech, MinIterations)
		if err != nil {
			t.Fatal(err)
		}
		if errs, err := s.Apply([]Change{{User: "u", Mech: mech, Cred: &c}}); err != nil || errs[0] != nil {
			t.Fatalf("apply: %v %v", errs, err)
		}
	}
	s, err = OpenUserStore(path) // what was written is what is read
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mech, user, pass string
		want             bool
	}{
		{SCRAMSHA256, "u", "pw-" + SCRAMSHA256, true},
		{SCRAMSHA512, "u", "pw-" + SCRAMSHA512, true},
		{SCRAMSHA512, "u", "pw-" + SCRAMSHA256, false},
		{SCRAMSHA512, "nobody", "x", false},
	} {
		if got := exchange(t, s, c.mech, c.user, c.pass); got != c.want {
			t.Errorf("%s %s/%s: accepted %v, want %v", c.mech, c.user, c.pass, got, c.want)
		}
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), "pw-") {
		t.Fatal("password in clear in the credentials file")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file mode %v, want 0600", fi.Mode().Perm())
	}
	errs, err := s.Apply([]Change{{User: "u", Mech: SCRAMSHA256}, {User: "ghost", Mech: SCRAMSHA256}})
	if err != nil || errs[0] != nil || errs[1] != ErrNoCredential {
		t.Fatalf("deletes: %v %v", errs, err)
	}
	if exchange(t, s, SCRAMSHA256, "u", "pw-"+SCRAMSHA256) {
		t.Fatal("deleted credential still accepted")
	}
}

// FuzzSCRAMServer feeds arbitrary client messages to the server side: it
// must never panic, and never accept without the password.
func FuzzSCRAMServer(f *testing.F) {
	f.Add("n,,n=u,r=abc", "c=biws,r=abcdef,p=AAAA")
	f.Add("", "")
	f.Add("p=tls-unique,,n=u,r=x", "garbage")
	dir := f.TempDir()
	s, err := OpenUserStore(filepath.Join(dir, UsersFile))
	if err != nil {
		f.Fatal(err)
	}
	c, _ := NewCredential(SCRAMSHA512, "secret", MinIterations)
	if _, err := s.Apply([]Change{{User: "u", Mech: SCRAMSHA512, Cred: &c}}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, first, final string) {
		sc, err := s.NewSCRAMExchange(SCRAMSHA512)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sc.Step(first); err != nil {
			return
		}
		_, _ = sc.Step(final)
		if sc.Done() && sc.Valid() {
			t.Fatalf("accepted a proof without the password: %q %q", first, final)
		}
	})
}

// FuzzParsePlain: never panics; what it accepts has a user and a password.
func FuzzParsePlain(f *testing.F) {
	f.Add([]byte("\x00u\x00p"))
	f.Add([]byte("a\x00u\x00p"))
	f.Add([]byte("\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, p, err := ParsePlain(b)
		if err == nil && (u == "" || p == "") {
			t.Fatalf("accepted %q as user %q password %q", b, u, p)
		}
	})
}

// FuzzACLFile: an ACL file either loads, every binding valid, or is
// refused with an error; it never panics.
func FuzzACLFile(f *testing.F) {
	good, _ := json.Marshal(aclFile{Version: 1, ACLs: []ACL{acl(topic, "t", prefix, "User:a", "*", read, allow)}})
	f.Add(good)
	f.Add([]byte(`{"acls":[{"resource_type":"TOPIC","pattern_type":"MATCH"}]}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), ACLFile)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := OpenACLStore(path, nil, false)
		if err != nil {
			return
		}
		f := Filter{ResourceType: 1, PatternType: 1, Operation: 1, Permission: 1}
		for _, a := range s.List(f) {
			if err := a.Validate(); err != nil {
				t.Fatalf("loaded an invalid binding: %v", err)
			}
			s.Authorizer().Authorized(a.Principal, a.Host, a.Operation, a.ResourceType, a.ResourceName)
		}
	})
}

// finalFor builds a client-final-message for serverFirst the way
// librdkafka before 2.1 does: its nonce is prefix + the server's nonce.
func finalFor(t *testing.T, clientFirstBare, serverFirst, prefix, password string) string {
	t.Helper()
	sn, _ := attr(serverFirst, "r")
	salt64, _ := attr(serverFirst, "s")
	salt, _ := base64.StdEncoding.DecodeString(salt64)
	it, _ := attr(serverFirst, "i")
	iters, _ := strconv.Atoi(it)
	salted, err := pbkdf2.Key(sha512.New, password, salt, iters, sha512.Size)
	if err != nil {
		t.Fatal(err)
	}
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(sha512.New, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	stored := sha512.Sum512(clientKey)
	wop := "c=biws,r=" + prefix + sn
	sig := mac(stored[:], clientFirstBare+","+serverFirst+","+wop)
	for i := range sig {
		sig[i] ^= clientKey[i]
	}
	return wop + ",p=" + base64.StdEncoding.EncodeToString(sig)
}

func TestSCRAMExchangeDoubledNonce(t *testing.T) {
	s, err := OpenUserStore(filepath.Join(t.TempDir(), UsersFile))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := NewCredential(SCRAMSHA512, "secret", MinIterations)
	if _, err := s.Apply([]Change{{User: "u", Mech: SCRAMSHA512, Cred: &c}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, prefix, password string
		want                   bool
	}{
		{"exact nonce", "", "secret", true},
		{"client nonce doubled (librdkafka < 2.1)", "cnonce123", "secret", true},
		{"doubled, wrong password", "cnonce123", "wrong", false},
		{"other prefix", "xyz", "secret", false},
	} {
		x, err := s.NewSCRAMExchange(SCRAMSHA512)
		if err != nil {
			t.Fatal(err)
		}
		s1, err := x.Step("n,,n=u,r=cnonce123")
		if err != nil {
			t.Fatal(err)
		}
		out, err := x.Step(finalFor(t, "n=u,r=cnonce123", s1, tc.prefix, tc.password))
		if got := err == nil && x.Done() && x.Valid(); got != tc.want {
			t.Errorf("%s: accepted %v (%q, %v), want %v", tc.name, got, out, err, tc.want)
		}
		if tc.want && !strings.HasPrefix(out, "v=") {
			t.Errorf("%s: server-final %q", tc.name, out)
		}
	}
}
