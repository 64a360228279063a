package ciscosim

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func TestSTS_GetCallerIdentity(t *testing.T) {
	s, srv := newSim(t, Config{NoRateLimits: true})
	o := s.State().Orgs[org]
	a := callSTS(t, srv.URL, orgCreds(s, org))
	v := a.sts(t)
	if a.status != 200 || a.header.Get("Content-Type") != "text/xml" || v.XMLName.Local != "GetCallerIdentityResponse" ||
		v.Xmlns != stsNamespace || v.MetadataRequestID == "" {
		t.Fatalf("%d %s\n%s", a.status, a.header.Get("Content-Type"), a.raw)
	}
	if v.Result.Account != o.AccountID || v.Result.Arn != "arn:aws:iam::"+o.AccountID+":user/cisco-managed-"+org ||
		v.Result.UserID != o.UserID || !strings.HasPrefix(v.Result.UserID, "AIDA") {
		t.Fatalf("identity %+v, org %+v", v.Result, o.AWSIdentity)
	}
	// The exact shape AWS answers.
	want := `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>` +
		o.ARN + `</Arn><UserId>` + o.UserID + `</UserId><Account>` + o.AccountID + `</Account></GetCallerIdentityResult>` +
		`<ResponseMetadata><RequestId>` + v.MetadataRequestID + `</RequestId></ResponseMetadata></GetCallerIdentityResponse>`
	if !strings.HasSuffix(a.raw, want) {
		t.Fatalf("got\n%s\nwant\n%s", a.raw, want)
	}
	// The same action as a signed GET query.
	get := send(t, signed(t, http.MethodGet, srv.URL+"/?"+stsBody, "", orgCreds(s, org), "sts", "eu-west-1", time.Now()))
	if get.status != 200 || get.sts(t).Result.Account != o.AccountID {
		t.Fatalf("GET: %d %s", get.status, get.raw)
	}
	// Another org's key is another identity.
	if other := callSTS(t, srv.URL, orgCreds(s, "2222222")).sts(t); other.Result.Account == o.AccountID || other.Result.Account == "" {
		t.Fatalf("org 2222222 answered as %+v", other.Result)
	}
	if got := s.State().STSCalls; got != 3 {
		t.Fatalf("sts_calls = %d", got)
	}
}

func TestSTS_Rejections(t *testing.T) {
	s, srv := newSim(t, Config{NoRateLimits: true})
	good := orgCreds(s, org)
	wrongSecret := aws.Credentials{AccessKeyID: good.AccessKeyID, SecretAccessKey: strings.Repeat("x", 40)}
	unknown := aws.Credentials{AccessKeyID: "AKIAUNKNOWNUNKNOWN00", SecretAccessKey: good.SecretAccessKey}

	v := wantSTSError(t, callSTS(t, srv.URL, wrongSecret), 403, "SignatureDoesNotMatch")
	if v.Error.Type != "Sender" || v.Error.Message != badSignatureMessage {
		t.Fatalf("wrong secret: %+v", v.Error)
	}
	a := callSTS(t, srv.URL, unknown)
	v = wantSTSError(t, a, 403, "InvalidClientTokenId")
	if v.Error.Type != "Sender" || v.Error.Message != "The security token included in the request is invalid." {
		t.Fatalf("unknown key: %+v", v.Error)
	}
	// The exact shape AWS answers.
	want := `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code>` +
		`<Message>The security token included in the request is invalid.</Message></Error><RequestId>` + v.RequestID + `</RequestId></ErrorResponse>`
	if !strings.HasSuffix(a.raw, want) {
		t.Fatalf("got\n%s\nwant\n%s", a.raw, want)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader(stsBody))
	wantSTSError(t, send(t, req), 403, "MissingAuthenticationToken")

	other := send(t, signed(t, http.MethodPost, srv.URL+"/", "Action=AssumeRole&Version=2011-06-15", good, "sts", "us-east-1", time.Now()))
	if v := wantSTSError(t, other, 400, "InvalidAction"); !strings.Contains(v.Error.Message, "AssumeRole") {
		t.Fatalf("InvalidAction message %q", v.Error.Message)
	}
	for _, skew := range []time.Duration{-16 * time.Minute, 16 * time.Minute} {
		a := send(t, signed(t, http.MethodPost, srv.URL+"/", stsBody, good, "sts", "us-east-1", time.Now().Add(skew)))
		if v := wantSTSError(t, a, 403, "SignatureDoesNotMatch"); !strings.HasPrefix(v.Error.Message, "Signature ") {
			t.Fatalf("skew %s: %q", skew, v.Error.Message)
		}
	}
	// Within 15 minutes is fine.
	if a := send(t, signed(t, http.MethodPost, srv.URL+"/", stsBody, good, "sts", "us-east-1", time.Now().Add(-14*time.Minute))); a.status != 200 {
		t.Fatalf("14 minutes old: %d %s", a.status, a.raw)
	}
	// Signed for another service.
	wantSTSError(t, send(t, signed(t, http.MethodPost, srv.URL+"/", stsBody, good, "iam", "us-east-1", time.Now())), 403, "SignatureDoesNotMatch")
	// No answer quotes the secret.
	for _, c := range []aws.Credentials{good, wrongSecret, unknown} {
		if a := callSTS(t, srv.URL, c); strings.Contains(a.raw, good.SecretAccessKey) || strings.Contains(a.raw, wrongSecret.SecretAccessKey) {
			t.Fatalf("an answer quotes a secret: %s", a.raw)
		}
	}
}

func TestSTS_Faults(t *testing.T) {
	cases := map[string]struct {
		fault  Fault
		status int
		code   string
	}{
		"sts_5xx":          {Fault{Kind: "sts_5xx"}, 503, "ServiceUnavailable"},
		"sts_5xx status":   {Fault{Kind: "sts_5xx", Status: 500}, 500, "InternalFailure"},
		"sts_throttling":   {Fault{Kind: "sts_throttling"}, 400, "Throttling"},
		"sts_delay":        {Fault{Kind: "sts_delay", DelayMS: 150}, 200, ""},
		"sts_drop":         {Fault{Kind: "sts_drop"}, 0, ""},
		"sts_reject":       {Fault{Kind: "sts_reject"}, 403, "InvalidClientTokenId"},
		"sts_5xx for this": {Fault{Kind: "sts_5xx", OrgID: org}, 503, "ServiceUnavailable"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s, srv := newSim(t, Config{NoRateLimits: true})
			creds := orgCreds(s, org)
			s.InjectFault(tc.fault)
			start := time.Now()
			req := signed(t, http.MethodPost, srv.URL+"/", stsBody, creds, "sts", "us-east-1", time.Now())
			switch resp, err := http.DefaultClient.Do(req); {
			case tc.status == 0:
				if err == nil {
					resp.Body.Close()
					t.Fatal("the connection was not dropped")
				}
			case err != nil:
				t.Fatal(err)
			default:
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				a := awsAnswer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
				if tc.code != "" {
					v := wantSTSError(t, a, tc.status, tc.code)
					if tc.code == "Throttling" && (v.Error.Message != "Rate exceeded" || v.Error.Type != "Sender") {
						t.Fatalf("throttling: %+v", v.Error)
					}
				} else if a.status != 200 || time.Since(start) < 150*time.Millisecond {
					t.Fatalf("delay: %d after %s", a.status, time.Since(start))
				}
			}
			// Used up: the next call is answered normally.
			if a := callSTS(t, srv.URL, creds); a.status != 200 || s.State().PendingFaults != 0 {
				t.Fatalf("after the fault: %d %s", a.status, a.raw)
			}
		})
	}
	t.Run("org filter", func(t *testing.T) {
		s, srv := newSim(t, Config{NoRateLimits: true})
		s.InjectFault(Fault{Kind: "sts_throttling", OrgID: "2222222"})
		if a := callSTS(t, srv.URL, orgCreds(s, org)); a.status != 200 {
			t.Fatalf("a fault for another org hit: %d", a.status)
		}
		wantSTSError(t, callSTS(t, srv.URL, orgCreds(s, "2222222")), 400, "Throttling")
	})
}

func TestFaults_STSAndRotateKeyAreApart(t *testing.T) {
	s, srv := newSim(t, Config{NoRateLimits: true})
	tok := getToken(t, srv.URL)

	s.InjectFault(Fault{Kind: "sts_5xx"})
	if r := rotate(t, srv.URL, tok); r.status != 200 {
		t.Fatalf("rotateKey took an STS fault: %d %s", r.status, r.raw)
	}
	if got := s.State().PendingFaults; got != 1 {
		t.Fatalf("pending faults = %d after rotateKey, want the STS fault still queued", got)
	}
	wantSTSError(t, callSTS(t, srv.URL, orgCreds(s, org)), 503, "ServiceUnavailable")

	s.InjectFault(Fault{Kind: "5xx"})
	if a := callSTS(t, srv.URL, orgCreds(s, org)); a.status != 200 {
		t.Fatalf("STS took a rotateKey fault: %d %s", a.status, a.raw)
	}
	if got := s.State().PendingFaults; got != 1 {
		t.Fatalf("pending faults = %d after STS, want the rotateKey fault still queued", got)
	}
	if r := rotate(t, srv.URL, tok); r.status != 503 {
		t.Fatalf("rotateKey after STS: %d", r.status)
	}
	// The control endpoint takes the STS kinds too.
	for _, kind := range []string{"sts_5xx", "sts_throttling", "sts_drop", "sts_delay"} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/_sim/faults", strings.NewReader(`{"kind":"`+kind+`"}`))
		if r := do(t, req); r.status != 200 {
			t.Fatalf("%s: %d %s", kind, r.status, r.raw)
		}
	}
}

// STSAccepted lists the key ids STS ever accepted, and no other.
func TestSTS_AcceptedKeyIDs(t *testing.T) {
	s, srv := newSim(t, Config{NoRateLimits: true})
	creds := orgCreds(s, org)
	if a := callSTS(t, srv.URL, creds); a.status != 200 {
		t.Fatalf("status %d", a.status)
	}
	unknown := creds
	unknown.AccessKeyID = "AKIAUNKNOWNUNKNOWN01"
	if a := callSTS(t, srv.URL, unknown); a.status != 403 {
		t.Fatalf("status %d", a.status)
	}
	if acc := s.State().STSAccepted; !acc[creds.AccessKeyID] || len(acc) != 1 {
		t.Fatalf("STSAccepted = %v", acc)
	}
}
