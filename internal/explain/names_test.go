package explain

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Every step name given to Stepf (or Spanf) is "package.Function" (or "package.Type.method") and that
// function exists in that package: a student reading `--explain` output finds the code by name.
func TestStepNamesAreFunctions(t *testing.T) {
	root := filepath.Join("..", "..")
	funcs := map[string]bool{} // "pkg.Func" and "pkg.Type.method"
	type use struct{ name, where string }
	var uses []use
	fset := token.NewFileSet()
	err := filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() && (info.Name() == "conformance" || strings.HasPrefix(info.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if info.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		pkg := f.Name.Name
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			name := fd.Name.Name
			if fd.Recv != nil && len(fd.Recv.List) == 1 {
				typ := fd.Recv.List[0].Type
				if st, ok := typ.(*ast.StarExpr); ok {
					typ = st.X
				}
				if id, ok := typ.(*ast.Ident); ok {
					funcs[pkg+"."+id.Name+"."+name] = true
				}
			}
			funcs[pkg+"."+name] = true
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "Stepf" && sel.Sel.Name != "Spanf" {
				return true
			}
			if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				s, _ := strconv.Unquote(lit.Value)
				uses = append(uses, use{s, fset.Position(lit.Pos()).String()})
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(uses) < 20 {
		t.Fatalf("found only %d explain steps: the walk is broken", len(uses))
	}
	for _, u := range uses {
		if !funcs[u.name] {
			t.Errorf("%s: step %q names no function of that package", u.where, u.name)
		}
	}
}
