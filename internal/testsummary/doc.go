// Command testsummary runs `go test -json` with the arguments it is given and
// prints what a plain `go test` prints (each failed test's output, the
// package lines "ok ...", "FAIL ...", "? ... [no test files]" and build
// errors), then, unlike a plain `go test`, a closing list of every skipped
// test with the reason it gave. `make test` uses it so that the loud skips
// of tests whose external client (kcat, kafka-python, ...) is missing are
// seen on a machine without them, without -v burying them in every test's
// log. It exits with go test's exit status.
//
//	go run ./internal/testsummary -race -count=1 ./broker/...
package main
