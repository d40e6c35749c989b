package logcheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/meshfs/meshfs/internal/testutil"
)

// sources lists every non-test Go file of the module, on every system.
func sources(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, p := range testutil.GoList(t) {
		for _, f := range append(p.GoFiles, p.IgnoredGoFiles...) {
			if !strings.HasSuffix(f, "_test.go") {
				files = append(files, filepath.Join(p.Dir, f))
			}
		}
	}
	return files
}

// TestWarningsSayWhatToDo fails for each logged warning or error without a
// "fix" attribute.
func TestWarningsSayWhatToDo(t *testing.T) {
	fset := token.NewFileSet()
	files := sources(t)
	calls := 0
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			attrs, ok := loud(call)
			if !ok {
				return true
			}
			calls++
			if !hasFix(attrs) {
				t.Errorf("%s: warning or error logged without a \"fix\" attribute", fset.Position(call.Pos()))
			}
			return true
		})
	}
	if calls < 50 {
		t.Errorf("found %d warning and error calls in %d files, want at least 50: is the search broken?", calls, len(files))
	}
}

// loud reports whether call logs at warn level or above, and returns its
// arguments after the message.
func loud(call *ast.CallExpr) ([]ast.Expr, bool) {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return nil, false
	}
	if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "http" {
		return nil, false // http.Error answers a request; it logs nothing
	}
	args := call.Args
	switch sel.Sel.Name {
	case "Warn", "Error":
		// err.Error() has no arguments; t.Error is in tests only.
		if len(args) < 1 {
			return nil, false
		}
		return args[1:], true
	case "WarnContext", "ErrorContext":
		if len(args) < 2 {
			return nil, false
		}
		return args[2:], true
	case "Log":
		if len(args) < 3 || quietLevel(args[1]) {
			return nil, false
		}
		return args[3:], true
	}
	return nil, false
}

// quietLevel reports whether e is slog.LevelDebug or slog.LevelInfo.
func quietLevel(e ast.Expr) bool {
	sel, ok := e.(*ast.SelectorExpr)
	return ok && (sel.Sel.Name == "LevelDebug" || sel.Sel.Name == "LevelInfo")
}

// hasFix reports whether the attribute arguments of a log call have the
// key "fix". A string literal is a key followed by its value; anything
// else is taken as a slog.Attr, which counts when it is built by a call
// such as slog.String("fix", ...).
func hasFix(args []ast.Expr) bool {
	for i := 0; i < len(args); i++ {
		if k, ok := stringLit(args[i]); ok {
			if k == "fix" {
				return true
			}
			i++ // skip the value
			continue
		}
		if c, ok := args[i].(*ast.CallExpr); ok && len(c.Args) > 0 {
			if k, ok := stringLit(c.Args[0]); ok && k == "fix" {
				return true
			}
		}
	}
	return false
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}
