//go:build e2e

package e2e

import (
	"archive/zip"
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The suite installs the plugin as an operator does: from the linux/amd64
// release zip, checked against SHA256SUMS, registered with the sum that
// SHA256SUMS gives for the bare binary. make test-e2e runs make release for
// both versions first.

// released is one version's release folder and its SHA256SUMS.
type released struct {
	dir     string
	product string            // the binary's name
	stem    string            // vault-plugin-secrets-cisco-s3_X.Y.Z_linux_amd64
	sums    map[string]string // file name -> sha256
}

func openRelease(t *testing.T, version string) released {
	t.Helper()
	return openProduct(t, version, pluginName, "")
}

// openProduct opens one product's zips and SHA256SUMS in a release's
// folder (subdir "" for the plugin's).
func openProduct(t *testing.T, version, product, subdir string) released {
	t.Helper()
	root := os.Getenv("E2E_RELEASE")
	if root == "" {
		t.Fatal("E2E_RELEASE is not set: run make test-e2e")
	}
	bare := strings.TrimPrefix(version, "v")
	r := released{dir: filepath.Join(root, bare, subdir), product: product,
		stem: product + "_" + bare + "_linux_amd64", sums: map[string]string{}}
	f, err := os.Open(filepath.Join(r.dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		sum, name, ok := strings.Cut(lines.Text(), "  ")
		if !ok || len(sum) != 64 {
			t.Fatalf("SHA256SUMS line %q is not sha256sum's format", lines.Text())
		}
		r.sums[name] = sum
	}
	return r
}

// binarySum is the sum to register the version with.
func (r released) binarySum(t *testing.T) string {
	t.Helper()
	sum := r.sums[r.stem+"/"+r.product]
	if sum == "" {
		t.Fatalf("SHA256SUMS in %s has no line for %s/%s", r.dir, r.stem, r.product)
	}
	return sum
}

// unpack checks the zip against SHA256SUMS, extracts the binary to dest and
// checks it too.
func (r released) unpack(t *testing.T, dest string) {
	t.Helper()
	zipPath := filepath.Join(r.dir, r.stem+".zip")
	if got, want := sha256File(t, zipPath), r.sums[r.stem+".zip"]; got != want {
		t.Fatalf("%s: sha256 %s, SHA256SUMS says %q", zipPath, got, want)
	}
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	if len(zr.File) != 1 || zr.File[0].Name != r.product {
		t.Fatalf("%s should hold only %s", zipPath, r.product)
	}
	in, err := zr.File[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dest, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, zr.File[0].Mode())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if got := sha256File(t, dest); got != r.binarySum(t) {
		t.Fatalf("unpacked %s: sha256 %s, SHA256SUMS says %s", r.product, got, r.binarySum(t))
	}
}

// pluginDir holds the released plugin of both versions, v1 and v2, as
// <name>-<version>.
func pluginDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, v := range []string{v1, v2} {
		openRelease(t, v).unpack(t, filepath.Join(dir, pluginName+"-"+v))
	}
	return dir
}
