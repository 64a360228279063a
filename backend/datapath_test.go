package backend

import (
	"strings"
	"testing"
)

func FuzzParseDataPath(f *testing.F) {
	f.Add("s3://cisco-managed-eu-central-1/1234567_0123456789abcdef0123456789abcdef01234567")
	f.Add("cisco-managed-us-west-2/a/b/")
	f.Add("s3://cisco-managed-/")
	f.Fuzz(func(t *testing.T, s string) {
		dp, err := parseDataPath(s)
		if err != nil {
			return
		}
		// A parsed path renders to a form that parses to itself.
		again, err := parseDataPath(dp.String())
		if err != nil || again != dp {
			t.Fatalf("%q -> %+v -> %+v (%v)", s, dp, again, err)
		}
		if !strings.HasPrefix(dp.Bucket, "cisco-managed-") || dp.Prefix == "" || strings.Contains(dp.Prefix, "..") && strings.Contains("/"+dp.Prefix+"/", "/../") {
			t.Fatalf("bad parse %+v", dp)
		}
	})
}

func TestParseDataPath(t *testing.T) {
	cases := map[string]struct {
		in                     string
		bucket, region, prefix string
		ok                     bool
	}{
		"documented":       {"s3://cisco-managed-eu-central-1/1234567_0123456789abcdef0123456789abcdef01234567", "cisco-managed-eu-central-1", "eu-central-1", "1234567_0123456789abcdef0123456789abcdef01234567", true},
		"no scheme":        {"cisco-managed-us-west-1/1234567_abc", "cisco-managed-us-west-1", "us-west-1", "1234567_abc", true},
		"nested prefix":    {"s3://cisco-managed-ap-southeast-2/1234567_abc/dnslogs/", "cisco-managed-ap-southeast-2", "ap-southeast-2", "1234567_abc/dnslogs", true},
		"empty":            {"", "", "", "", false},
		"other bucket":     {"s3://logs/1234567", "", "", "", false},
		"no region":        {"s3://cisco-managed-/x", "", "", "", false},
		"double slash":     {"s3://cisco-managed-eu-west-1//x", "", "", "", false},
		"space in prefix":  {"s3://cisco-managed-eu-west-1/a b", "", "", "", false},
		"dot segment":      {"s3://cisco-managed-eu-west-1/a/./b", "", "", "", false},
		"upper case regio": {"s3://cisco-managed-EU-WEST-1/x", "", "", "", false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dp, err := parseDataPath(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && (dp.Bucket != tc.bucket || dp.Region != tc.region || dp.Prefix != tc.prefix) {
				t.Fatalf("got %+v", dp)
			}
		})
	}
}
