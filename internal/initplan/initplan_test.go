package initplan

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"strconv"
	"testing"
)

// The op codes are written twice, here and in the C stage's plan.h: every one must have the
// same number on both sides (a mismatch would make the init do one op with another's fields).
func TestOpCodesMatchPlanH(t *testing.T) {
	goOps := map[string]int{}
	f, err := parser.ParseFile(token.NewFileSet(), "initplan.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, sp := range g.Specs {
			v := sp.(*ast.ValueSpec)
			for i, n := range v.Names {
				if lit, ok := v.Values[i].(*ast.BasicLit); ok && lit.Kind == token.INT && len(n.Name) > 2 && n.Name[:2] == "Op" {
					goOps["op"+n.Name[2:]], _ = strconv.Atoi(lit.Value)
				}
			}
		}
	}
	h, err := os.ReadFile("../../libcontainer/nsenter/plan.h")
	if err != nil {
		t.Fatal(err)
	}
	cOps := map[string]int{}
	for _, m := range regexp.MustCompile(`\b(op[A-Z]\w*) = (\d+),`).FindAllStringSubmatch(string(h), -1) {
		cOps[m[1]], _ = strconv.Atoi(m[2])
	}
	if len(goOps) < 50 || len(cOps) != len(goOps) {
		t.Fatalf("%d op codes in initplan.go, %d in plan.h", len(goOps), len(cOps))
	}
	for name, n := range goOps {
		if cOps[name] != n {
			t.Errorf("%s: %d in initplan.go, %d in plan.h", name, n, cOps[name])
		}
	}
}

// Escape's short cut gives what json.Marshal gives.
func TestEscapeIsJSONs(t *testing.T) {
	for _, s := range []string{"", "plain text 0-9 /dev/null", `a"b`, `a\b`, "<a&b>", "tab\there", "nl\n",
		"\x7f", "é", "\u2028", "bad\xffutf8", "\x00", "mount -t proc proc /proc (flags none)"} {
		b, _ := json.Marshal(s)
		if want := string(b[1 : len(b)-1]); Escape(s) != want {
			t.Errorf("Escape(%q) = %q, want %q", s, Escape(s), want)
		}
	}
}
