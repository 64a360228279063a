package backend

import (
	"strings"
	"testing"
)

func FuzzValidateURL(f *testing.F) {
	for _, s := range []string{"https://api.umbrella.com/admin/v2", "http://127.0.0.1:8787/admin/v2", "http://example.com", "https://u:p@h/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		clean, err := validateURL(s)
		if err != nil {
			return
		}
		again, err := validateURL(clean)
		if err != nil || again != clean {
			t.Fatalf("%q -> %q -> %q (%v)", s, clean, again, err)
		}
		if !strings.HasPrefix(clean, "https://") && !strings.HasPrefix(clean, "http://") {
			t.Fatalf("accepted scheme of %q", clean)
		}
	})
}

// TestInsecureURLsRefused checks the loopback rule of the URL validator,
// which every config write runs: plain http only for loopback hosts.
func TestInsecureURLsRefused(t *testing.T) {
	for raw, ok := range map[string]bool{
		"http://127.0.0.1:8787/admin/v2":  true,
		"http://127.9.9.9/admin/v2":       true,
		"http://localhost/admin/v2":       true,
		"http://[::1]/admin/v2":           true,
		"http://localhost.evil.com/x":     false,
		"http://127.0.0.1.nip.io/x":       false,
		"http://10.0.0.1/admin/v2":        false,
		"http://api.umbrella.com/admin":   false,
		"https://api.umbrella.com/admin":  true,
		"HTTPS://API.UMBRELLA.COM/admin/": true,
	} {
		_, err := validateURL(raw)
		if (err == nil) != ok {
			t.Errorf("%s: err = %v, want accepted=%v", raw, err, ok)
		}
	}
}
