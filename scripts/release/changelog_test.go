package main

import (
	"strings"
	"testing"
)

// A final release needs its dated section and nothing left under
// Unreleased; a pre-release is not checked (release skips the check).
func TestChangelogReady(t *testing.T) {
	cases := map[string]struct {
		changelog string
		want      string // "" when ready
	}{
		"dated, nothing unreleased": {"# Changelog\n\n## [Unreleased]\n\n## [1.2.0] - 2026-12-01\n### Added\n- x\n", ""},
		"no Unreleased heading":     {"# Changelog\n\n## [1.2.0] - 2026-12-01\n- x\n", ""},
		"only subheadings left":     {"## [Unreleased]\n### Added\n\n## [1.2.0] - 2026-12-01\n- x\n", ""},
		"entries left unreleased":   {"## [Unreleased]\n### Added\n- y\n\n## [1.2.0] - 2026-12-01\n- x\n", "still has entries"},
		"undated":                   {"## [Unreleased]\n\n## [1.2.0]\n- x\n", "no dated"},
		"no section":                {"## [Unreleased]\n\n## [1.1.0] - 2026-11-01\n- x\n", "no dated"},
		"another version's date":    {"## [1.2.0-rc.1] - 2026-11-30\n", "no dated"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := changelogReady(tc.changelog, "1.2.0")
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
