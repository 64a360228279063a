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
	// The tagged commit with a change is not the release.
	if err := os.WriteFile(filepath.Join(dir, "Makefile"), append(makefile, "\n# changed\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, want := stamped("VERSION=v1.2.3"), "v1.2.3-dev+"+commit+".dirty"; got != want {
		t.Errorf("make build on the tagged commit with a change stamps %s, want %s", got, want)
	}
	// A version make cannot stamp is refused.
	cmd := exec.Command("make", "-s", "build", "VERSION=v1.2.3+meta")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "is not vX.Y.Z") {
		t.Errorf("make build VERSION=v1.2.3+meta: %v\n%s", err, out)
	}
}

// make release builds a final version only from the clean commit its tag
// names.
func TestCheckTagged(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	dir := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("init", "-q")
	git("add", "f")
	git("commit", "-q", "-m", "x")
	if err := checkTagged(dir, "v1.0.0"); err == nil || !strings.Contains(err.Error(), "tag this commit") {
		t.Fatalf("untagged: %v", err)
	}
	git("tag", "v1.0.0")
	if err := checkTagged(dir, "v1.0.0"); err != nil {
		t.Fatalf("tagged and clean: %v", err)
	}
	if err := os.WriteFile(file, []byte("b"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := checkTagged(dir, "v1.0.0"); err == nil || !strings.Contains(err.Error(), "has changes") {
		t.Fatalf("tagged with a change: %v", err)
	}
}
