// Package streamstest runs a streams.Topology in-process, synchronously and
// deterministically, over in-memory topics, the way net/http/httptest runs a
// handler without a network. It is what an application's go test imports.
package streamstest
