package ciscosim

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSigV4_Tampering(t *testing.T) {
	s, srv := newSim(t, Config{NoRateLimits: true})
	creds := orgCreds(s, org)
	prefix := s.State().Orgs[org].Prefix
	stsRequest := func() *http.Request {
		return signed(t, http.MethodPost, srv.URL+"/", stsBody, creds, "sts", "us-east-1", time.Now())
	}

	req := stsRequest()
	if auth := req.Header.Get("Authorization"); !strings.Contains(auth, "SignedHeaders=content-length;content-type;host;x-amz-date,") {
		t.Fatalf("the Go signer signed %s; this test means to cover a signed content-length", auth)
	}
	if a := send(t, req); a.status != 200 {
		t.Fatalf("untouched: %d %s", a.status, a.raw)
	}

	// Same length, other content: only the payload hash can tell.
	req = stsRequest()
	req.Body = io.NopCloser(strings.NewReader(strings.Replace(stsBody, "2011-06-15", "2011-06-16", 1)))
	wantSTSError(t, send(t, req), 403, "SignatureDoesNotMatch")

	req = stsRequest()
	req.Header.Set("Content-Type", "text/plain")
	wantSTSError(t, send(t, req), 403, "SignatureDoesNotMatch")

	req = stsRequest()
	req.Header.Set("X-Amz-Date", time.Now().Add(time.Second).UTC().Format(amzDateFormat))
	wantSTSError(t, send(t, req), 403, "SignatureDoesNotMatch")

	// Headers that were not signed may change, as in AWS.
	req = stsRequest()
	req.Header.Set("User-Agent", "something else")
	req.Header.Set("X-Unsigned", "1")
	if a := send(t, req); a.status != 200 {
		t.Fatalf("unsigned header added: %d %s", a.status, a.raw)
	}

	// A signature over a path or query is one over that path or query.
	list := "/" + "cisco-managed-us-east-1?list-type=2&prefix=" + prefix + "/"
	req = signed(t, http.MethodGet, srv.URL+list, "", creds, "s3", "us-east-1", time.Now())
	req.URL.RawQuery = strings.Replace(req.URL.RawQuery, "list-type=2", "list-type=2&max-keys=1", 1)
	wantS3Error(t, send(t, req), 403, "SignatureDoesNotMatch")

	// X-Amz-Content-Sha256 must be the body's hash.
	req = signed(t, http.MethodGet, srv.URL+list, "", creds, "s3", "us-east-1", time.Now())
	req.Body = io.NopCloser(strings.NewReader("extra"))
	req.ContentLength = 5
	wantS3Error(t, send(t, req), 400, "XAmzContentSHA256Mismatch")
}

// TestSigV4_WhatClientsSign covers signatures made as other clients make
// them: awscli signs no content-length and sends UNSIGNED-PAYLOAD over
// HTTPS; the plugin signs an Accept header.
func TestSigV4_WhatClientsSign(t *testing.T) {
	s, srv := newSim(t, Config{NoRateLimits: true})
	creds := orgCreds(s, org)

	// Signed with no length, as awscli does, then sent with the body of
	// unknown length: net/http sends it chunked.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", nil)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	signWith(t, req, hashOf(stsBody), creds, "sts", "us-east-1")
	if strings.Contains(req.Header.Get("Authorization"), "content-length") {
		t.Fatal("content-length was signed")
	}
	req.Body = io.NopCloser(strings.NewReader(stsBody))
	if a := send(t, req); a.status != 200 {
		t.Fatalf("without content-length: %d %s", a.status, a.raw)
	}

	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader(stsBody))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.Header.Set("Accept", "text/xml")
	signWith(t, req, hashOf(stsBody), creds, "sts", "eu-central-1")
	if !strings.Contains(req.Header.Get("Authorization"), "accept;") {
		t.Fatal("accept was not signed")
	}
	if a := send(t, req); a.status != 200 {
		t.Fatalf("with accept: %d %s", a.status, a.raw)
	}

	o := s.State().Orgs[org]
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/"+o.Bucket+"?list-type=2&prefix="+o.Prefix+"/", nil)
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	req.Header.Set("X-Amz-Checksum-Mode", "ENABLED")
	signWith(t, req, "UNSIGNED-PAYLOAD", creds, "s3", "us-east-1")
	if a := send(t, req); a.status != 200 {
		t.Fatalf("unsigned payload: %d %s", a.status, a.raw)
	}
}

func TestKeysInAWS_FollowRotation(t *testing.T) {
	s, srv := newSim(t, Config{NoRateLimits: true})
	o := s.State().Orgs[org]
	listPath := "/" + o.Bucket + "?list-type=2&prefix=" + o.Prefix + "/"
	old := orgCreds(s, org)
	if a := callS3(t, srv.URL, http.MethodGet, listPath, old); a.status != 200 {
		t.Fatalf("before rotation: %d %s", a.status, a.raw)
	}

	if r := rotate(t, srv.URL, getToken(t, srv.URL)); r.status != 200 {
		t.Fatalf("rotate: %d", r.status)
	}
	wantSTSError(t, callSTS(t, srv.URL, old), 403, "InvalidClientTokenId")
	wantS3Error(t, callS3(t, srv.URL, http.MethodGet, listPath, old), 403, "InvalidAccessKeyId")
	rotated := orgCreds(s, org)
	if a := callSTS(t, srv.URL, rotated); a.status != 200 {
		t.Fatalf("new key in STS: %d %s", a.status, a.raw)
	}
	if a := callS3(t, srv.URL, http.MethodGet, listPath, rotated); a.status != 200 {
		t.Fatalf("new key in S3: %d %s", a.status, a.raw)
	}

	if _, ok := s.RefreshKey(org); !ok {
		t.Fatal("refresh")
	}
	wantSTSError(t, callSTS(t, srv.URL, rotated), 403, "InvalidClientTokenId")
	if a := callSTS(t, srv.URL, orgCreds(s, org)); a.status != 200 {
		t.Fatalf("refreshed key: %d %s", a.status, a.raw)
	}
	if st := s.State(); st.STSCalls != 4 || st.S3Calls != 3 {
		t.Fatalf("sts_calls %d, s3_calls %d", st.STSCalls, st.S3Calls)
	}
}

func TestKeysInAWS_PropagationDelay(t *testing.T) {
	const delay = 300 * time.Millisecond
	s, srv := newSim(t, Config{NoRateLimits: true, PropagationDelay: delay})
	o := s.State().Orgs[org]
	listPath := "/" + o.Bucket + "?list-type=2&prefix=" + o.Prefix + "/"
	old := orgCreds(s, org)
	if a := callSTS(t, srv.URL, old); a.status != 200 {
		t.Fatalf("a key from New must work at once: %d %s", a.status, a.raw)
	}

	if r := rotate(t, srv.URL, getToken(t, srv.URL)); r.status != 200 {
		t.Fatalf("rotate: %d", r.status)
	}
	o = s.State().Orgs[org]
	if o.KeyUsableAt.Sub(o.KeyIssuedAt) != delay {
		t.Fatalf("issued %s, usable %s", o.KeyIssuedAt, o.KeyUsableAt)
	}
	fresh := orgCreds(s, org)
	wantSTSError(t, callSTS(t, srv.URL, fresh), 403, "InvalidClientTokenId")
	wantS3Error(t, callS3(t, srv.URL, http.MethodGet, listPath, fresh), 403, "InvalidAccessKeyId")
	wantSTSError(t, callSTS(t, srv.URL, old), 403, "InvalidClientTokenId") // the old one stopped at once
	if time.Now().After(o.KeyUsableAt) {
		t.Fatal("the checks above took longer than the delay; they proved nothing")
	}

	time.Sleep(time.Until(o.KeyUsableAt) + 20*time.Millisecond)
	if a := callSTS(t, srv.URL, fresh); a.status != 200 {
		t.Fatalf("after the delay, STS: %d %s", a.status, a.raw)
	}
	if a := callS3(t, srv.URL, http.MethodGet, listPath, fresh); a.status != 200 {
		t.Fatalf("after the delay, S3: %d %s", a.status, a.raw)
	}
	wantSTSError(t, callSTS(t, srv.URL, old), 403, "InvalidClientTokenId")
}
