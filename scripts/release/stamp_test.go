package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// make build stamps VERSION as it is only on the commit its tag names;
// anywhere else a dev version of it with the commit. The Makefile runs in
// a repository of its own, so that the test can tag without touching this
// one.
func TestMakeBuildStampsABareVersionOnlyOnItsTag(t *testing.T) {
	for _, tool := range []string{"git", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s", tool)
		}
	}
	makefile, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Makefile"), makefile, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("git", "init", "-q")
	run("git", "add", "Makefile")
	run("git", "commit", "-q", "-m", "x")
	commit := strings.TrimSpace(run("git", "rev-parse", "--short=12", "HEAD"))
	stamp := regexp.MustCompile(`backend\.Version=(\S+?)"`)
	stamped := func(args ...string) string {
		t.Helper()
		m := stamp.FindStringSubmatch(run("make", append([]string{"-s", "-n", "build"}, args...)...))
		if m == nil {
			t.Fatal("make -n build shows no version stamp")
		}
		return m[1]
	}
	def := regexp.MustCompile(`(?m)^VERSION\s*\?=\s*(\S+)`).FindSubmatch(makefile)
	if def == nil {
		t.Fatal("the Makefile has no default VERSION")
	}
	defaultVersion := strings.TrimSuffix(string(def[1]), "-dev")
	for _, tc := range []struct {
		args []string
		tag  string
		want string
	}{
		{nil, "", defaultVersion + "-dev+" + commit},
		{[]string{"VERSION=v1.2.3"}, "", "v1.2.3-dev+" + commit},
		{[]string{"VERSION=v1.2.3"}, "v1.2.2", "v1.2.3-dev+" + commit},
		{[]string{"VERSION=v1.2.3"}, "v1.2.3", "v1.2.3"},
		{[]string{"VERSION=v1.2.3-rc.1"}, "v1.2.3-rc.1", "v1.2.3-rc.1"},
	} {
		if tc.tag != "" {
			run("git", "tag", tc.tag)
		}
		if got := stamped(tc.args...); got != tc.want {
			t.Errorf("make build %v with tag %q stamps %s, want %s", tc.args, tc.tag, got, tc.want)
		}
	}
}
