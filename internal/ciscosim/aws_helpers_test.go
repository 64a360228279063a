package ciscosim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Test helpers that talk to the simulator as AWS clients do: requests
// signed by aws-sdk-go-v2's signer, answers parsed as AWS shapes them.

const stsBody = "Action=GetCallerIdentity&Version=2011-06-15"

// awsAnswer is an AWS reply, with the fields of STS's and S3's XML.
type awsAnswer struct {
	status int
	header http.Header
	raw    string
}

// stsAnswer is STS's XML, success or error.
type stsAnswer struct {
	XMLName xml.Name
	Xmlns   string `xml:"xmlns,attr"`
	Result  struct {
		Arn     string `xml:"Arn"`
		UserID  string `xml:"UserId"`
		Account string `xml:"Account"`
	} `xml:"GetCallerIdentityResult"`
	Error struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID         string `xml:"RequestId"`
	MetadataRequestID string `xml:"ResponseMetadata>RequestId"`
}

// s3ErrorAnswer is S3's error XML.
type s3ErrorAnswer struct {
	XMLName   xml.Name
	Code      string `xml:"Code"`
	Message   string `xml:"Message"`
	Region    string `xml:"Region"`
	RequestID string `xml:"RequestId"`
}

func (a awsAnswer) sts(t *testing.T) stsAnswer {
	t.Helper()
	var v stsAnswer
	if err := xml.Unmarshal([]byte(a.raw), &v); err != nil {
		t.Fatalf("STS answer %d is not XML: %v\n%s", a.status, err, a.raw)
	}
	return v
}

func (a awsAnswer) s3Error(t *testing.T) s3ErrorAnswer {
	t.Helper()
	var v s3ErrorAnswer
	if err := xml.Unmarshal([]byte(a.raw), &v); err != nil || v.XMLName.Local != "Error" {
		t.Fatalf("S3 answer %d is not an <Error>: %v\n%s", a.status, err, a.raw)
	}
	return v
}

// orgCreds is an organization's current key, as /_sim/state shows it.
func orgCreds(s *Server, orgID string) aws.Credentials {
	o := s.State().Orgs[orgID]
	return aws.Credentials{AccessKeyID: o.CurrentKeyID, SecretAccessKey: o.SecretAccessKey}
}

// signed builds a request and signs it for service and region at the
// given time. S3 requests carry X-Amz-Content-Sha256, as S3 clients send.
func signed(t *testing.T, method, url, body string, creds aws.Credentials, service, region string, at time.Time) *http.Request {
	t.Helper()
	var reader io.Reader
	if body != "" {
		reader = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, reader)
	if err != nil {
		t.Fatal(err)
	}
	if service == "sts" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	}
	hash := hashOf(body)
	if service == "s3" {
		req.Header.Set("X-Amz-Content-Sha256", hash)
	}
	signAt(t, req, hash, creds, service, region, at)
	return req
}

// signWith signs req now, for a payload whose hash is payloadHash.
func signWith(t *testing.T, req *http.Request, payloadHash string, creds aws.Credentials, service, region string) {
	t.Helper()
	signAt(t, req, payloadHash, creds, service, region, time.Now())
}

func signAt(t *testing.T, req *http.Request, payloadHash string, creds aws.Credentials, service, region string, at time.Time) {
	t.Helper()
	err := v4.NewSigner().SignHTTP(context.Background(), creds, req, payloadHash, service, region, at, func(o *v4.SignerOptions) {
		o.DisableURIPathEscaping = service == "s3"
	})
	if err != nil {
		t.Fatal(err)
	}
}

func hashOf(body string) string {
	sum := sha256.Sum256([]byte(body))
	return hex.EncodeToString(sum[:])
}

// send sends req and reads the answer.
func send(t *testing.T, req *http.Request) awsAnswer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return awsAnswer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
}

// callSTS asks STS GetCallerIdentity with creds, now.
func callSTS(t *testing.T, base string, creds aws.Credentials) awsAnswer {
	t.Helper()
	return send(t, signed(t, http.MethodPost, base+"/", stsBody, creds, "sts", "us-east-1", time.Now()))
}

// callS3 sends a GET or HEAD to an S3 path ("/bucket/key?query") with
// creds, signed for us-east-1 now.
func callS3(t *testing.T, base, method, path string, creds aws.Credentials) awsAnswer {
	t.Helper()
	return send(t, signed(t, method, base+path, "", creds, "s3", "us-east-1", time.Now()))
}

// wantSTSError checks an STS error answer's status, type and code.
func wantSTSError(t *testing.T, a awsAnswer, status int, code string) stsAnswer {
	t.Helper()
	v := a.sts(t)
	if a.status != status || v.XMLName.Local != "ErrorResponse" || v.Error.Code != code || v.Xmlns != stsNamespace ||
		v.RequestID == "" || a.header.Get("Content-Type") != "text/xml" {
		t.Fatalf("want %d %s, got %d %s\n%s", status, code, a.status, a.header.Get("Content-Type"), a.raw)
	}
	return v
}

// wantS3Error checks an S3 error answer's status and code.
func wantS3Error(t *testing.T, a awsAnswer, status int, code string) s3ErrorAnswer {
	t.Helper()
	if a.status != status {
		t.Fatalf("want %d %s, got %d\n%s", status, code, a.status, a.raw)
	}
	v := a.s3Error(t)
	if v.Code != code || v.RequestID == "" || a.header.Get("x-amz-request-id") != v.RequestID {
		t.Fatalf("want %s, got %s\n%s", code, v.Code, a.raw)
	}
	return v
}
