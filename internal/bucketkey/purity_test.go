package bucketkey

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The package decides and does nothing: it imports nothing that does I/O
// and reads no clock, so that every decision is a function of its inputs.
func TestPackageDoesNoIOAndReadsNoClock(t *testing.T) {
	allowed := map[string]bool{"encoding/json": true, "fmt": true, "hash/fnv": true, "time": true,
		"vault-plugin-secrets-cisco-s3/internal/cisco": true, "vault-plugin-secrets-cisco-s3/internal/stscheck": true}
	clock := map[string]bool{"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true, "Tick": true,
		"NewTimer": true, "NewTicker": true, "AfterFunc": true}
	dataOnly := map[string]bool{"cisco.IssuedKey": true, "stscheck.Result": true, "stscheck.Outcome": true,
		"stscheck.Valid": true, "stscheck.Invalid": true, "stscheck.Unknown": true}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		files++
		f, err := parser.ParseFile(token.NewFileSet(), e.Name(), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); !allowed[path] {
				t.Errorf("%s imports %s: the key's life does no I/O", e.Name(), path)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			x, ok := sel.X.(*ast.Ident)
			switch {
			case !ok:
			case x.Name == "time" && clock[sel.Sel.Name]:
				t.Errorf("%s calls time.%s: the key's life reads no clock; the shell passes now", e.Name(), sel.Sel.Name)
			case (x.Name == "cisco" || x.Name == "stscheck") && !dataOnly[x.Name+"."+sel.Sel.Name]:
				// These packages also call Cisco and AWS: only their data
				// types may be used here.
				t.Errorf("%s uses %s.%s: the key's life uses only the data of the Cisco and STS packages", e.Name(), x.Name, sel.Sel.Name)
			}
			return true
		})
	}
	if files < 5 {
		t.Fatalf("looked at %d files only", files)
	}
}

// Outside the package no one can set a field of the record: all its
// fields are unexported.
func TestRecordFieldsAreThePackagesAlone(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeOf(Record{})} {
		for i := 0; i < typ.NumField(); i++ {
			if typ.Field(i).IsExported() {
				t.Errorf("%s.%s is exported: code outside the package could set it", typ.Name(), typ.Field(i).Name)
			}
		}
	}
}
