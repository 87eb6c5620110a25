package auth

import (
	"encoding/json"
	"os"
	"path/filepath"
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
		sc, err := s.NewSCRAMConversation(SCRAMSHA512)
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
