//go:build release

package main

import (
	"archive/zip"
	"bytes"
	"debug/buildinfo"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReleaseIsReproducible builds the whole release twice, from two copies
// of the source at different paths, and requires identical bytes. A third
// build, of linux/amd64 only, starts from an empty build cache, so that
// nothing compiled is shared with the first; its zip must match too. Run it
// with make test-release.
func TestReleaseIsReproducible(t *testing.T) {
	const version = "v9.9.9-repro"
	first := buildRelease(t, version, "", platforms...)
	second := buildRelease(t, version, "", platforms...)
	cold := buildRelease(t, version, t.TempDir(), "linux/amd64")

	a, b := readTree(t, first), readTree(t, second)
	coldZip := products[0].name + "_9.9.9-repro_linux_amd64.zip"
	if c := readTree(t, cold)[coldZip]; c == nil || !bytes.Equal(c, a[coldZip]) {
		t.Errorf("%s built with an empty build cache differs from the first build", coldZip)
	}
	if want := len(products) * (len(platforms) + 1); len(a) != want {
		t.Fatalf("release holds %d files, want %d: a zip per platform and a SHA256SUMS per product", len(a), want)
	}
	for name, content := range a {
		if !bytes.Equal(content, b[name]) {
			t.Errorf("%s differs between the two builds", name)
		}
	}
	for name := range b {
		if _, ok := a[name]; !ok {
			t.Errorf("%s only in the second build", name)
		}
	}

	// What an operator relies on: every zip and binary has its sum, each zip
	// holds one executable, and the binaries carry the version and were
	// built without cgo and with -trimpath.
	for _, prod := range products {
		sums := string(a[filepath.Join(prod.subdir, "SHA256SUMS")])
		for _, p := range platforms {
			goos, goarch, _ := strings.Cut(p, "/")
			stem := prod.name + "_9.9.9-repro_" + goos + "_" + goarch
			file := prod.name
			if goos == "windows" {
				file += ".exe"
			}
			zipped := a[filepath.Join(prod.subdir, stem+".zip")]
			if zipped == nil {
				t.Fatalf("no %s.zip", stem)
			}
			bin := unzipOnly(t, zipped, file)
			for name, content := range map[string][]byte{stem + ".zip": zipped, stem + "/" + file: bin} {
				if !strings.Contains(sums, sum(content)+"  "+name+"\n") {
					t.Errorf("%s/SHA256SUMS has no correct line for %s", prod.subdir, name)
				}
			}
			checkBuildInfo(t, stem, bin)
			// -trimpath keeps -ldflags out of the build info: look for the
			// stamped version itself.
			if !bytes.Contains(bin, []byte(version)) {
				t.Errorf("%s: the version %s is not stamped in the binary", stem, version)
			}
		}
	}
}

// buildRelease copies the tracked source to a fresh folder and runs the
// release command there, with gocache as the build cache when set; it
// returns the release folder.
func buildRelease(t *testing.T, version, gocache string, targets ...string) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	files, err := exec.Command("git", "-C", "../..", "ls-files", "-z").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Split(strings.TrimRight(string(files), "\x00"), "\x00") {
		content, err := os.ReadFile(filepath.Join("../..", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(src, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, f), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(src, "out")
	cmd := exec.Command("go", "run", "./scripts/release", "-version", version, "-out", out,
		"-platforms", strings.Join(targets, ","))
	cmd.Dir = src
	// The copy has no git history: date the zips as a release of a commit
	// would.
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1763856000")
	if gocache != "" {
		cmd.Env = append(cmd.Env, "GOCACHE="+gocache)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("release in %s: %v\n%s", src, err, b)
	}
	return filepath.Join(out, strings.TrimPrefix(version, "v"))
}

func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		files[rel], err = os.ReadFile(path)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func unzipOnly(t *testing.T, zipped []byte, want string) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(zipped), int64(len(zipped)))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 1 || zr.File[0].Name != want || zr.File[0].Mode().Perm() != 0o755 {
		t.Fatalf("zip should hold only %s, mode 0755", want)
	}
	f, err := zr.File[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func checkBuildInfo(t *testing.T, stem string, bin []byte) {
	t.Helper()
	info, err := buildinfo.Read(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("%s: %v", stem, err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" || settings["vcs"] != "" {
		t.Errorf("%s: build settings %v, want CGO_ENABLED=0, -trimpath and no VCS stamp", stem, settings)
	}
}
