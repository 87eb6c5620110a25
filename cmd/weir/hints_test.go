package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// weirCommand matches a weir command line quoted in a message, as far as
// its command words go: "weir topic create %s --partitions N" gives
// "topic create".
var weirCommand = regexp.MustCompile(`\bweir((?: [a-z][a-z-]*)+)`)

// TestHintsNameRealCommands reads every string literal of the library's
// non-test Go files and checks that each weir command line quoted in one
// (the hints of errors such as the runtime's "create it first (weir topic
// create ...)") names a command the binary has, so that a renamed or
// mistyped command in a hint fails here rather than in front of a user.
func TestHintsNameRealCommands(t *testing.T) {
	root := newRootCmd()
	checked := 0
	for _, dir := range []string{"broker", "runtime", "state", "streams", "dsl", "serde", "examples", "internal"} {
		err := filepath.WalkDir(filepath.Join("..", "..", dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					return true
				}
				for _, m := range weirCommand.FindAllStringSubmatch(s, -1) {
					words := strings.Fields(m[1])
					checked++
					cmd, rest, err := root.Find(words)
					if err != nil || cmd == root || (len(rest) > 0 && cmd.HasSubCommands()) {
						t.Errorf("%s: %q names %q, which is not a weir command", path, s, "weir"+m[1])
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if checked == 0 {
		t.Fatal("no weir command line found in any message: the scan is broken")
	}
	t.Logf("checked %d weir command lines in messages", checked)
}
