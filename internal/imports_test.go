// Package internal_test holds checks on the packages under internal/; the
// directory has no package of its own.
package internal_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	module = "vault-plugin-secrets-cisco-s3"
	vault  = "github.com/hashicorp/vault"
	// simulator may import Vault: it is a test and development tool.
	simulator = module + "/internal/ciscosim"
)

// mustBeChecked are packages the check must find, so that it cannot pass
// by finding none.
var mustBeChecked = []string{module + "/internal/cisco", module + "/internal/stscheck", module + "/internal/bucketkey"}

// TestInternalPackagesDoNotImportVault: no package under internal/ but the
// simulator imports Vault, directly or through its dependencies, so that
// what they hold stays usable and testable without Vault.
func TestInternalPackagesDoNotImportVault(t *testing.T) {
	goTool := goCommand(t)
	roots := goList(t, goTool, "-e", "-f", "{{if .GoFiles}}{{.ImportPath}}{{end}}", module+"/internal/...")
	for _, want := range mustBeChecked {
		if !slices.Contains(roots, want) {
			t.Fatalf("go list found %v under internal/, not %s: the check would pass without looking", roots, want)
		}
	}
	// The graph also holds backend, which imports Vault: the check must
	// see it there, or it sees nothing.
	imports := importGraph(t, goTool, append(slices.Clone(roots), module+"/backend"))
	if vaultPath(imports, module+"/backend") == nil {
		t.Fatal("the check does not see that backend imports Vault: it cannot see it elsewhere either")
	}
	checked := 0
	for _, pkg := range roots {
		if pkg == simulator || strings.HasPrefix(pkg, simulator+"/") {
			continue
		}
		checked++
		if path := vaultPath(imports, pkg); path != nil {
			t.Errorf("%s imports Vault: %s", pkg, strings.Join(path, " -> "))
		}
	}
	if checked < len(mustBeChecked) {
		t.Fatalf("checked %d packages, want at least %d", checked, len(mustBeChecked))
	}
}

// goCommand is the go command that runs the tests.
func goCommand(t *testing.T) string {
	t.Helper()
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			return p
		}
	}
	p, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command to list the packages with: %v", err)
	}
	return p
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// goList runs go list and returns its non-empty output lines.
func goList(t *testing.T, goTool string, args ...string) []string {
	t.Helper()
	cmd := exec.Command(goTool, append([]string{"list"}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg += ": " + string(ee.Stderr)
		}
		t.Fatalf("go list %s: %s", strings.Join(args, " "), msg)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// importGraph maps every package that pkgs need, themselves included, to
// the packages it imports (not counting its tests).
func importGraph(t *testing.T, goTool string, pkgs []string) map[string][]string {
	t.Helper()
	lines := goList(t, goTool, append([]string{"-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}"}, pkgs...)...)
	graph := make(map[string][]string, len(lines))
	for _, l := range lines {
		f := strings.Fields(l)
		graph[f[0]] = f[1:]
	}
	for _, p := range pkgs {
		if _, ok := graph[p]; !ok {
			t.Fatalf("go list -deps did not list %s", p)
		}
	}
	return graph
}

// vaultPath returns a chain of imports from pkg to a Vault package, nil
// when there is none.
func vaultPath(graph map[string][]string, pkg string) []string {
	prev := map[string]string{pkg: ""}
	queue := []string{pkg}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == vault || strings.HasPrefix(p, vault+"/") {
			var path []string
			for ; p != ""; p = prev[p] {
				path = append([]string{p}, path...)
			}
			return path
		}
		for _, next := range graph[p] {
			if _, seen := prev[next]; !seen {
				prev[next] = p
				queue = append(queue, next)
			}
		}
	}
	return nil
}
