package ciscosim

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// listAnswer is S3's ListBucketResult.
type listAnswer struct {
	XMLName               xml.Name
	Xmlns                 string `xml:"xmlns,attr"`
	Name                  string `xml:"Name"`
	Prefix                string `xml:"Prefix"`
	Delimiter             string `xml:"Delimiter"`
	MaxKeys               int    `xml:"MaxKeys"`
	KeyCount              int    `xml:"KeyCount"`
	IsTruncated           bool   `xml:"IsTruncated"`
	NextContinuationToken string `xml:"NextContinuationToken"`
	Contents              []struct {
		Key          string `xml:"Key"`
		LastModified string `xml:"LastModified"`
		ETag         string `xml:"ETag"`
		Size         int    `xml:"Size"`
		StorageClass string `xml:"StorageClass"`
	} `xml:"Contents"`
	CommonPrefixes []struct {
		Prefix string `xml:"Prefix"`
	} `xml:"CommonPrefixes"`
}

func list(t *testing.T, s *Server, base, orgID string, query url.Values) listAnswer {
	t.Helper()
	o := s.State().Orgs[orgID]
	query.Set("list-type", "2")
	a := callS3(t, base, http.MethodGet, "/"+o.Bucket+"?"+query.Encode(), orgCreds(s, orgID))
	var v listAnswer
	if err := xml.Unmarshal([]byte(a.raw), &v); a.status != 200 || err != nil || v.XMLName.Local != "ListBucketResult" ||
		v.Xmlns != s3Namespace || v.Name != o.Bucket || a.header.Get("Content-Type") != "application/xml" {
		t.Fatalf("list %v: %d %v\n%s", query, a.status, err, a.raw)
	}
	return v
}

func TestS3_ListObjectsV2(t *testing.T) {
	s, srv := newSim(t, Config{NoRateLimits: true})
	prefix := s.State().Orgs[org].Prefix

	top := list(t, s, srv.URL, org, url.Values{"prefix": {prefix + "/"}, "delimiter": {"/"}})
	var dirs []string
	for _, p := range top.CommonPrefixes {
		dirs = append(dirs, p.Prefix)
	}
	if want := prefix + "/dnslogs/," + prefix + "/firewalllogs/," + prefix + "/proxylogs/"; strings.Join(dirs, ",") != want ||
		len(top.Contents) != 0 || top.KeyCount != 3 || top.Delimiter != "/" || top.Prefix != prefix+"/" || top.MaxKeys != 1000 {
		t.Fatalf("top level: %+v", top)
	}

	all := list(t, s, srv.URL, org, url.Values{"prefix": {prefix + "/"}})
	keyShape := regexp.MustCompile(`^` + prefix + `/(dns|proxy|firewall)logs/\d{4}-\d\d-\d\d/\d{4}-\d\d-\d\d-\d\d-\d\d-[0-9a-f]{4}\.csv\.gz$`)
	if len(all.Contents) != 5 || all.KeyCount != 5 || all.IsTruncated {
		t.Fatalf("recursive: %+v", all)
	}
	for i, c := range all.Contents {
		if !keyShape.MatchString(c.Key) || c.Size == 0 || c.StorageClass != "STANDARD" || !regexp.MustCompile(`^"[0-9a-f]{32}"$`).MatchString(c.ETag) {
			t.Fatalf("object %+v", c)
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000Z", c.LastModified); err != nil {
			t.Fatalf("LastModified %q", c.LastModified)
		}
		if i > 0 && all.Contents[i-1].Key >= c.Key {
			t.Fatalf("not sorted: %s before %s", all.Contents[i-1].Key, c.Key)
		}
	}

	// Pages of two, following the continuation token.
	var paged []string
	query := url.Values{"prefix": {prefix + "/"}, "max-keys": {"2"}}
	for page := 0; ; page++ {
		v := list(t, s, srv.URL, org, query)
		for _, c := range v.Contents {
			paged = append(paged, c.Key)
		}
		if !v.IsTruncated {
			break
		}
		if page > 5 || v.NextContinuationToken == "" || v.KeyCount != 2 {
			t.Fatalf("page %d: %+v", page, v)
		}
		query.Set("continuation-token", v.NextContinuationToken)
	}
	if len(paged) != 5 || paged[0] != all.Contents[0].Key || paged[4] != all.Contents[4].Key {
		t.Fatalf("paged %v", paged)
	}
	// Common prefixes page too, each counted once.
	v := list(t, s, srv.URL, org, url.Values{"prefix": {prefix + "/"}, "delimiter": {"/"}, "max-keys": {"1"}})
	v2 := list(t, s, srv.URL, org, url.Values{"prefix": {prefix + "/"}, "delimiter": {"/"}, "max-keys": {"1"}, "continuation-token": {v.NextContinuationToken}})
	if len(v.CommonPrefixes) != 1 || len(v2.CommonPrefixes) != 1 || v2.CommonPrefixes[0].Prefix != prefix+"/firewalllogs/" {
		t.Fatalf("prefix pages: %+v then %+v", v, v2)
	}
	after := list(t, s, srv.URL, org, url.Values{"prefix": {prefix + "/"}, "start-after": {all.Contents[3].Key}})
	if len(after.Contents) != 1 || after.Contents[0].Key != all.Contents[4].Key {
		t.Fatalf("start-after: %+v", after)
	}
	// encoding-type=url, as awscli asks: the names still decode to the same.
	enc := list(t, s, srv.URL, org, url.Values{"prefix": {prefix + "/"}, "encoding-type": {"url"}})
	if len(enc.Contents) != 5 || enc.Contents[0].Key != all.Contents[0].Key {
		t.Fatalf("encoding-type=url: %+v", enc)
	}
	if got := s3URLEncode("a b/c+d"); got != "a+b/c%2Bd" {
		t.Fatalf("s3URLEncode = %q", got)
	}
}

func TestS3_GetAndHeadObject(t *testing.T) {
	s, srv := newSim(t, Config{NoRateLimits: true})
	o := s.State().Orgs[org]
	obj := list(t, s, srv.URL, org, url.Values{"prefix": {o.Prefix + "/dnslogs/"}}).Contents[0]
	path := "/" + o.Bucket + "/" + obj.Key

	get := callS3(t, srv.URL, http.MethodGet, path, orgCreds(s, org))
	sum := md5.Sum([]byte(get.raw))
	if get.status != 200 || len(get.raw) != obj.Size || get.header.Get("ETag") != obj.ETag || `"`+hex.EncodeToString(sum[:])+`"` != obj.ETag ||
		get.header.Get("Last-Modified") == "" || get.header.Get("x-amz-request-id") == "" {
		t.Fatalf("get: %d %v", get.status, get.header)
	}
	zr, err := gzip.NewReader(bytes.NewReader([]byte(get.raw)))
	if err != nil {
		t.Fatal(err)
	}
	csv, _ := io.ReadAll(zr)
	if lines := strings.Split(strings.TrimSpace(string(csv)), "\n"); len(lines) != 2 || !strings.Contains(lines[0], org) || !strings.HasPrefix(lines[0], `"2025-03-1`) {
		t.Fatalf("content %q", csv)
	}
	// The same call again gives the same bytes.
	if again := callS3(t, srv.URL, http.MethodGet, path, orgCreds(s, org)); again.raw != get.raw {
		t.Fatal("an object changed between reads")
	}

	head := callS3(t, srv.URL, http.MethodHead, path, orgCreds(s, org))
	if head.status != 200 || head.raw != "" || head.header.Get("Content-Length") != get.header.Get("Content-Length") || head.header.Get("ETag") != obj.ETag {
		t.Fatalf("head: %d %v", head.status, head.header)
	}
	if a := callS3(t, srv.URL, http.MethodHead, "/"+o.Bucket+"/"+o.Prefix+"/nope.csv.gz", orgCreds(s, org)); a.status != 404 || a.raw != "" {
		t.Fatalf("head of a missing key: %d %q", a.status, a.raw)
	}
	wantS3Error(t, callS3(t, srv.URL, http.MethodGet, "/"+o.Bucket+"/"+o.Prefix+"/nope.csv.gz", orgCreds(s, org)), 404, "NoSuchKey")
}

func TestS3_Refusals(t *testing.T) {
	s, srv := newSim(t, Config{NoRateLimits: true, Orgs: []Org{{ID: "5555555", Region: "eu-west-1"}}})
	mine, other := s.State().Orgs[org], s.State().Orgs["2222222"]
	creds := orgCreds(s, org)
	otherObject := orgObjects(other.OrgID, other.Prefix)[0].key

	cases := map[string]struct {
		method, path string
		status       int
		code         string
	}{
		"other org's prefix":     {"GET", "/" + mine.Bucket + "?list-type=2&prefix=" + other.Prefix + "/", 403, "AccessDenied"},
		"no prefix":              {"GET", "/" + mine.Bucket + "?list-type=2", 403, "AccessDenied"},
		"a prefix of the prefix": {"GET", "/" + mine.Bucket + "?list-type=2&prefix=" + org + "_", 403, "AccessDenied"},
		"other org's object":     {"GET", "/" + mine.Bucket + "/" + otherObject, 403, "AccessDenied"},
		"write":                  {"PUT", "/" + mine.Bucket + "/" + mine.Prefix + "/new.csv.gz", 403, "AccessDenied"},
		"list buckets":           {"GET", "/", 403, "AccessDenied"},
		"unknown bucket":         {"GET", "/cisco-managed-ap-south-9?list-type=2&prefix=" + mine.Prefix + "/", 404, "NoSuchBucket"},
		"other region's bucket":  {"GET", "/cisco-managed-eu-west-1?list-type=2&prefix=" + mine.Prefix + "/", 400, "AuthorizationHeaderMalformed"},
		"list v1":                {"GET", "/" + mine.Bucket + "?prefix=" + mine.Prefix + "/", 501, "NotImplemented"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			v := wantS3Error(t, callS3(t, srv.URL, tc.method, tc.path, creds), tc.status, tc.code)
			if tc.code == "AuthorizationHeaderMalformed" && v.Region != "eu-west-1" {
				t.Fatalf("region %q: %+v", v.Region, v)
			}
		})
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/"+mine.Bucket+"?list-type=2&prefix="+mine.Prefix+"/", nil)
	wantS3Error(t, send(t, req), 403, "AccessDenied")
	stale := signed(t, http.MethodGet, srv.URL+"/"+mine.Bucket+"?list-type=2&prefix="+mine.Prefix+"/", "", creds, "s3", "us-east-1", time.Now().Add(-20*time.Minute))
	wantS3Error(t, send(t, stale), 403, "RequestTimeTooSkewed")
	wrong := creds
	wrong.SecretAccessKey = strings.Repeat("y", 40)
	v := wantS3Error(t, callS3(t, srv.URL, http.MethodGet, "/"+mine.Bucket+"?list-type=2&prefix="+mine.Prefix+"/", wrong), 403, "SignatureDoesNotMatch")
	if v.Message != badSignatureMessage {
		t.Fatalf("message %q", v.Message)
	}
	wrong = creds
	wrong.AccessKeyID = "AKIAUNKNOWNUNKNOWN00"
	v = wantS3Error(t, callS3(t, srv.URL, http.MethodGet, "/"+mine.Bucket+"/"+mine.Prefix+"/x", wrong), 403, "InvalidAccessKeyId")
	if v.Message != "The AWS Access Key Id you provided does not exist in our records." {
		t.Fatalf("message %q", v.Message)
	}

	// An org in eu-west-1 reads its bucket there, signed for eu-west-1.
	eu := s.State().Orgs["5555555"]
	req = signed(t, http.MethodGet, srv.URL+"/cisco-managed-eu-west-1?list-type=2&prefix="+eu.Prefix+"/", "", orgCreds(s, "5555555"), "s3", "eu-west-1", time.Now())
	if a := send(t, req); a.status != 200 || !strings.Contains(a.raw, eu.Prefix+"/dnslogs/") {
		t.Fatalf("eu-west-1: %d %s", a.status, a.raw)
	}
}

func TestAWSIdentity(t *testing.T) {
	s, srv := newSim(t, Config{NoRateLimits: true, Orgs: []Org{{ID: "5555555", Region: "eu-west-1"}}})
	o := s.State().Orgs[org]
	if !regexp.MustCompile(`^`+org+`_[0-9a-f]{40}$`).MatchString(o.Prefix) || o.Region != "us-east-1" || o.Bucket != "cisco-managed-us-east-1" ||
		o.DataPath != "s3://cisco-managed-us-east-1/"+o.Prefix+"/" || !regexp.MustCompile(`^\d{12}$`).MatchString(o.AccountID) ||
		!regexp.MustCompile(`^AIDA[A-Z2-7]{17}$`).MatchString(o.UserID) {
		t.Fatalf("identity %+v", o.AWSIdentity)
	}
	// The same org id gives the same identity in every simulator.
	if again := New(Config{Orgs: []Org{{ID: org}}}).State().Orgs[org]; again.AWSIdentity != o.AWSIdentity {
		t.Fatalf("%+v then %+v", o.AWSIdentity, again.AWSIdentity)
	}
	if other := s.State().Orgs["2222222"]; other.AccountID == o.AccountID || other.Prefix == o.Prefix {
		t.Fatal("two orgs share an account or a prefix")
	}
	if eu := s.State().Orgs["5555555"]; eu.Bucket != "cisco-managed-eu-west-1" || !strings.HasPrefix(eu.DataPath, "s3://cisco-managed-eu-west-1/5555555_") {
		t.Fatalf("eu-west-1 org: %+v", eu.AWSIdentity)
	}
	// /_sim/state shows them, and /_sim/orgs sets the region.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/_sim/orgs", strings.NewReader(`{"org_id":"6666666","region":"ap-southeast-2"}`))
	if r := do(t, req); r.status != 200 {
		t.Fatalf("orgs: %d", r.status)
	}
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/_sim/state", nil)
	r := do(t, req)
	shown := r.body["orgs"].(map[string]interface{})
	mine, added := shown[org].(map[string]interface{}), shown["6666666"].(map[string]interface{})
	if mine["data_path"] != o.DataPath || mine["account_id"] != o.AccountID || mine["arn"] != o.ARN || mine["prefix"] != o.Prefix ||
		added["bucket"] != "cisco-managed-ap-southeast-2" || mine["key_usable_at"] == nil {
		t.Fatalf("state: %s", r.raw)
	}
}
