// Command release builds the plugin, the simulator and the credential
// process for every supported platform and packs them as HashiCorp packs
// its own plugins: one zip per platform and a SHA256SUMS file per product. Run it with make release
// VERSION=vX.Y.Z.
//
// Two runs on the same commit give identical bytes: binaries are built with
// CGO off, -trimpath, no VCS stamp and an empty build id, and the zips
// carry a fixed time and mode.
package main

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// platforms are the release targets, as GOOS/GOARCH.
var platforms = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64"}

// product is one released binary.
type product struct {
	name    string // binary and zip name prefix
	pkg     string // package to build
	version string // -X target that receives the version
	subdir  string // folder under the release folder ("" for the top)
}

var products = []product{
	{name: "vault-plugin-secrets-cisco-s3", pkg: "./cmd/vault-plugin-secrets-cisco-s3", version: "vault-plugin-secrets-cisco-s3/backend.Version"},
	{name: "cisco-s3-sim", pkg: "./cmd/cisco-s3-sim", version: "main.Version", subdir: "cisco-s3-sim"},
	// For the shippers' hosts, beside Vault Agent.
	{name: "cisco-s3-credential-process", pkg: "./cmd/cisco-s3-credential-process", version: "main.Version", subdir: "cisco-s3-credential-process"},
}

var semver = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$`)

func main() {
	version := flag.String("version", "", "release version, vX.Y.Z or vX.Y.Z-pre")
	out := flag.String("out", "bin/release", "folder that receives X.Y.Z/")
	only := flag.String("platforms", strings.Join(platforms, ","), "comma-separated GOOS/GOARCH list")
	flag.Parse()
	dir, err := release(*version, *out, strings.Split(*only, ","))
	if err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
	fmt.Println(dir)
}

func release(version, out string, targets []string) (string, error) {
	if !semver.MatchString(version) {
		return "", fmt.Errorf("VERSION %q is not vX.Y.Z or vX.Y.Z-pre (example: make release VERSION=v0.2.0)", version)
	}
	bare := strings.TrimPrefix(version, "v")
	// A final release must say in the changelog what users get.
	if !strings.Contains(bare, "-") {
		if err := checkChangelog(bare); err != nil {
			return "", err
		}
		if err := checkTagged(".", version); err != nil {
			return "", err
		}
	}
	for _, p := range targets {
		if !slices.Contains(platforms, p) {
			return "", fmt.Errorf("platform %q is not one of %s", p, strings.Join(platforms, ", "))
		}
	}
	stamp, err := sourceTime()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(out, bare)
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	for _, prod := range products {
		pdir := filepath.Join(dir, prod.subdir)
		if err := os.MkdirAll(pdir, 0o755); err != nil {
			return "", err
		}
		sums := map[string]string{}
		for _, p := range targets {
			goos, goarch, _ := strings.Cut(p, "/")
			bin, err := build(prod, version, goos, goarch)
			if err != nil {
				return "", err
			}
			stem := fmt.Sprintf("%s_%s_%s_%s", prod.name, bare, goos, goarch)
			file := prod.name
			if goos == "windows" {
				file += ".exe"
			}
			zipped, err := zipOne(file, bin, stamp)
			if err != nil {
				return "", err
			}
			if err := os.WriteFile(filepath.Join(pdir, stem+".zip"), zipped, 0o644); err != nil {
				return "", err
			}
			sums[stem+".zip"] = sum(zipped)
			// The binary's sum is what vault plugin register -sha256 takes; its
			// name is where unzip -d <stem> puts it, so that sha256sum -c
			// checks it too.
			sums[stem+"/"+file] = sum(bin)
		}
		if err := os.WriteFile(filepath.Join(pdir, "SHA256SUMS"), sumsFile(sums), 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// build compiles one product for one platform and returns the binary.
func build(prod product, version, goos, goarch string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "release-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "bin")
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -buildid= -X "+prod.version+"="+version, "-o", bin, prod.pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch, "GOFLAGS=")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("building %s for %s/%s: %w", prod.name, goos, goarch, err)
	}
	return os.ReadFile(bin)
}

// zipOne packs one executable with a fixed time and mode.
func zipOne(name string, content []byte, stamp time.Time) ([]byte, error) {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: stamp}
	h.SetMode(0o755)
	f, err := w.CreateHeader(h)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(f, bytes.NewReader(content)); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// sourceTime is the time stamped into the zips: SOURCE_DATE_EPOCH when set,
// else the last commit's time, so that it is the same for every build of a
// commit.
func sourceTime() (time.Time, error) {
	epoch := os.Getenv("SOURCE_DATE_EPOCH")
	if epoch == "" {
		out, err := exec.Command("git", "log", "-1", "--format=%ct").Output()
		if err != nil {
			return time.Time{}, errors.New("no git history to date the release: set SOURCE_DATE_EPOCH")
		}
		epoch = strings.TrimSpace(string(out))
	}
	secs, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q is not a number of seconds", epoch)
	}
	return time.Unix(secs, 0).UTC(), nil
}

// checkTagged says why the repository in dir is not the commit of a
// final release version, or nil: the release is built from the commit its
// tag names, with no changes, as make build stamps it.
func checkTagged(dir, version string) error {
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		return string(out), err
	}
	tags, err := git("tag", "--points-at", "HEAD")
	if err != nil {
		return fmt.Errorf("a final release is built from the commit its tag names, and git cannot say which tags name this one: %v", err)
	}
	if !slices.Contains(strings.Fields(tags), version) {
		return fmt.Errorf("a final release is built from the commit its tag names: tag this commit %s first (git tag %s)", version, version)
	}
	if _, err := git("diff", "--quiet", "HEAD"); err != nil {
		return fmt.Errorf("the tree has changes that the commit of %s does not: commit or stash them first", version)
	}
	return nil
}

func checkChangelog(bare string) error {
	b, err := os.ReadFile("CHANGELOG.md")
	if err != nil {
		return err
	}
	return changelogReady(string(b), bare)
}

// changelogReady says why changelog is not ready for the final release
// bare (X.Y.Z), or nil: the release needs its dated section ("## [X.Y.Z] -
// YYYY-MM-DD"), and nothing may be left under "## [Unreleased]", which
// would ship undescribed.
func changelogReady(changelog, bare string) error {
	dated := regexp.MustCompile(`(?m)^## \[` + regexp.QuoteMeta(bare) + `\] - \d{4}-\d{2}-\d{2}\s*$`)
	if !dated.MatchString(changelog) {
		return fmt.Errorf("CHANGELOG.md has no dated \"## [%s] - YYYY-MM-DD\" section: say what this release changes, and when, first", bare)
	}
	unreleased := regexp.MustCompile(`(?m)^## \[Unreleased\]\s*$`).FindStringIndex(changelog)
	if unreleased == nil {
		return nil
	}
	rest := changelog[unreleased[1]:]
	if next := regexp.MustCompile(`(?m)^## \[`).FindStringIndex(rest); next != nil {
		rest = rest[:next[0]]
	}
	for _, line := range strings.Split(rest, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			return fmt.Errorf("CHANGELOG.md still has entries under \"## [Unreleased]\": move them into the %s section first", bare)
		}
	}
	return nil
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// sumsFile writes the sha256sum format, sorted by name.
func sumsFile(sums map[string]string) []byte {
	var b bytes.Buffer
	for _, n := range slices.Sorted(maps.Keys(sums)) {
		fmt.Fprintf(&b, "%s  %s\n", sums[n], n)
	}
	return b.Bytes()
}
