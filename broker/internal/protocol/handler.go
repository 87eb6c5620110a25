package protocol

import (
	"context"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// HandlerFunc gives one decoded request its meaning. See the package
// documentation for the contract on its return values.
type HandlerFunc func(ctx context.Context, s *Server, r *Request) (kmsg.Response, error)

// Request is one decoded request as a handler sees it.
type Request struct {
	// Key is the API key and Version the request's version.
	Key, Version int16
	// CorrelationID is echoed in the response header by the dispatcher.
	CorrelationID int32
	// ClientID is the client's self-chosen name (empty when null).
	ClientID string
	// Body is the decoded request, of the kmsg type for Key.
	Body kmsg.Request
	// Remote is the peer's address, for logs.
	Remote string
	// Session is the connection's security state (nil in tests that call
	// handlers directly: no checks then).
	Session *Session
	// closeAfter, set by a handler, closes the connection once its
	// response is written (a failed SASL authentication).
	closeAfter bool
}

// handlerEntry is one row of the handler table.
type handlerEntry struct {
	key        int16
	minVersion int16
	maxVersion int16
	fn         HandlerFunc
}

// handlers is the handler table, indexed by API key. It is filled only by
// register from init functions and read-only afterwards, so it needs no lock.
var handlers = map[int16]handlerEntry{}

// register adds the handler for one API key. It is called from the init
// function of the key's file; registering a key twice, an inverted version
// range, or a range beyond what kmsg can decode is a programming error and
// panics at init.
func register(k kmsg.Key, minVersion, maxVersion int16, fn HandlerFunc) {
	key := k.Int16()
	if _, dup := handlers[key]; dup {
		panic(fmt.Sprintf("protocol: API key %d registered twice", key))
	}
	req := kmsg.RequestForKey(key)
	if req == nil || minVersion < 0 || minVersion > maxVersion || maxVersion > req.MaxVersion() {
		panic(fmt.Sprintf("protocol: bad registration for API key %d versions %d-%d", key, minVersion, maxVersion))
	}
	handlers[key] = handlerEntry{key: key, minVersion: minVersion, maxVersion: maxVersion, fn: fn}
}

// clusterOnly holds the handlers served and advertised in cluster mode
// only (registerClusterOnly).
var clusterOnly = map[int16]handlerEntry{}

// registerClusterOnly is register for an API a single node neither serves
// nor advertises.
func registerClusterOnly(k kmsg.Key, minVersion, maxVersion int16, fn HandlerFunc) {
	register(k, minVersion, maxVersion, fn)
	key := k.Int16()
	clusterOnly[key] = handlers[key]
	delete(handlers, key)
}

// lookupHandler returns the entry for key.
func lookupHandler(key int16) (handlerEntry, bool) {
	h, ok := handlers[key]
	if !ok {
		h, ok = clusterOnly[key]
	}
	return h, ok
}

// supportedKeys returns the advertised API keys with their version ranges,
// sorted by key.
func supportedKeys() []kmsg.ApiVersionsResponseApiKey {
	out := make([]kmsg.ApiVersionsResponseApiKey, 0, len(handlers))
	for _, h := range handlers {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = h.key, h.minVersion, h.maxVersion
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ApiKey < out[j].ApiKey })
	return out
}

// Extension is long-lived state shared by a group of handlers (for example
// the group coordinator). It lives as long as the Server.
type Extension interface {
	// Close stops the extension and waits for anything it started.
	Close() error
}

// extensionEntry is one registered extension constructor.
type extensionEntry struct {
	name string
	open func(s *Server) (Extension, error)
}

// extensions is filled only from init functions, in registration order.
var extensions []extensionEntry

// RegisterExtension registers an extension constructor from an init
// function. open runs when a Server starts; the returned value is available
// to handlers through Server.Extension(name).
func RegisterExtension(name string, open func(s *Server) (Extension, error)) {
	for _, e := range extensions {
		if e.name == name {
			panic(fmt.Sprintf("protocol: extension %q registered twice", name))
		}
	}
	extensions = append(extensions, extensionEntry{name: name, open: open})
}

// withClusterOnlyKeys adds the cluster-only APIs to keys, sorted by key.
func withClusterOnlyKeys(keys []kmsg.ApiVersionsResponseApiKey) []kmsg.ApiVersionsResponseApiKey {
	for _, h := range clusterOnly {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = h.key, h.minVersion, h.maxVersion
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].ApiKey < keys[j].ApiKey })
	return keys
}
