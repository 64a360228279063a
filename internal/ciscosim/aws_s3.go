package ciscosim

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/http"
	"strings"
)

// A read-only, path-style S3: /<bucket>?list-type=2 (ListObjectsV2), GET
// and HEAD /<bucket>/<key>. A key may read only its own organization's
// folder, as the IAM policy on Cisco's keys allows; anything else, writes
// included, is AccessDenied.

const s3Namespace = "http://s3.amazonaws.com/doc/2006-03-01/"

type s3Error struct {
	XMLName    xml.Name `xml:"Error"`
	Code       string   `xml:"Code"`
	Message    string   `xml:"Message"`
	BucketName string   `xml:"BucketName,omitempty"`
	Key        string   `xml:"Key,omitempty"`
	Region     string   `xml:"Region,omitempty"`
	RequestID  string   `xml:"RequestId"`
}

func writeS3Error(w http.ResponseWriter, status int, e s3Error) {
	writeXML(w, status, "application/xml", "x-amz-request-id", e.RequestID, e)
}

func (s *Server) handleS3(w http.ResponseWriter, r *http.Request) {
	requestID := newRequestID()
	fail := func(status int, code, message string) {
		writeS3Error(w, status, s3Error{Code: code, Message: message, RequestID: requestID})
	}
	s.mu.Lock()
	s.state.S3Calls++
	s.mu.Unlock()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAWSBody+1))
	if err != nil || len(body) > maxAWSBody {
		fail(http.StatusBadRequest, "MaxMessageLengthExceeded", "Your request was too big.")
		return
	}

	check := s.checkSigV4(r, body, "s3")
	switch check.verdict {
	case sigV4Missing:
		fail(http.StatusForbidden, "AccessDenied", "Access Denied")
		return
	case sigV4Malformed:
		fail(http.StatusBadRequest, "AuthorizationHeaderMalformed", "The authorization header is malformed.")
		return
	case sigV4UnknownKey:
		fail(http.StatusForbidden, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
		return
	case sigV4Skewed:
		fail(http.StatusForbidden, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large.")
		return
	case sigV4PayloadMismatch:
		fail(http.StatusBadRequest, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.")
		return
	case sigV4BadSignature:
		fail(http.StatusForbidden, "SignatureDoesNotMatch", badSignatureMessage)
		return
	}

	org := check.org
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if bucket == "" { // ListBuckets: not in a bucket key's policy
		fail(http.StatusForbidden, "AccessDenied", "Access Denied")
		return
	}
	region, exists := s.bucketRegion(bucket)
	if !exists {
		writeS3Error(w, http.StatusNotFound, s3Error{Code: "NoSuchBucket", Message: "The specified bucket does not exist",
			BucketName: bucket, RequestID: requestID})
		return
	}
	if region != check.auth.region {
		// S3 names the bucket's region, so clients can sign again for it.
		writeS3Error(w, http.StatusBadRequest, s3Error{Code: "AuthorizationHeaderMalformed",
			Message: "The authorization header is malformed; the region '" + check.auth.region + "' is wrong; expecting '" + region + "'",
			Region:  region, RequestID: requestID})
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		fail(http.StatusForbidden, "AccessDenied", "Access Denied")
		return
	}
	if key == "" {
		if r.Method == http.MethodGet && r.URL.Query().Get("list-type") == "2" {
			s.listObjectsV2(w, r, org, bucket, requestID)
			return
		}
		fail(http.StatusNotImplemented, "NotImplemented", "Only ListObjectsV2 (list-type=2) is simulated on a bucket.")
		return
	}
	if bucket != org.Bucket || !strings.HasPrefix(key, org.Prefix+"/") {
		fail(http.StatusForbidden, "AccessDenied", "Access Denied")
		return
	}
	for _, obj := range orgObjects(org.OrgID, org.Prefix) {
		if obj.key == key {
			serveObject(w, r, obj, requestID)
			return
		}
	}
	writeS3Error(w, http.StatusNotFound, s3Error{Code: "NoSuchKey", Message: "The specified key does not exist.",
		Key: key, RequestID: requestID})
}

// bucketRegion returns the region of a bucket some organization has.
func (s *Server) bucketRegion(bucket string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.orgs {
		if o.Bucket == bucket {
			return o.Region, true
		}
	}
	return "", false
}

// serveObject answers GetObject and HeadObject; ServeContent adds ranges
// and conditional requests, and leaves the body out of a HEAD answer.
func serveObject(w http.ResponseWriter, r *http.Request, obj s3Object, requestID string) {
	w.Header().Set("Content-Type", "application/x-gzip")
	w.Header().Set("ETag", obj.etag)
	w.Header().Set("x-amz-request-id", requestID)
	http.ServeContent(w, r, "", obj.lastModified, bytes.NewReader(obj.body))
}
