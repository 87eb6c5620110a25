package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
)

func main() {
	goCmd := os.Getenv("GO")
	if goCmd == "" {
		goCmd = "go"
	}
	cmd := exec.Command(goCmd, append([]string{"test", "-json"}, os.Args[1:]...)...)
	cmd.Stdin = os.Stdin
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(2)
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(2)
	}
	res, ferr := Filter(out, os.Stdout)
	werr := cmd.Wait()
	if ferr != nil {
		fmt.Fprintln(os.Stderr, "testsummary: reading go test's output:", ferr)
	}
	res.WriteSkips(os.Stdout)
	var exit *exec.ExitError
	switch {
	case errors.As(werr, &exit):
		os.Exit(exit.ExitCode())
	case werr != nil:
		fmt.Fprintln(os.Stderr, "testsummary:", werr)
		os.Exit(2)
	case ferr != nil || res.Failed > 0:
		// go test succeeded but a failure was seen, or its output could
		// not be read: do not let the run pass.
		os.Exit(1)
	}
}
