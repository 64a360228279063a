package ciscosim

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// AWS STS GetCallerIdentity, in the query protocol that awscli (1.x and
// 2.x) and hand-signed requests use: POST / with a form body, or GET /
// with the same parameters in the query.

const stsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"

const (
	stsInvalidKeyMessage = "The security token included in the request is invalid."
	badSignatureMessage  = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)

type stsErrorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}

type getCallerIdentityResponse struct {
	XMLName   xml.Name `xml:"GetCallerIdentityResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	Arn       string   `xml:"GetCallerIdentityResult>Arn"`
	UserID    string   `xml:"GetCallerIdentityResult>UserId"`
	Account   string   `xml:"GetCallerIdentityResult>Account"`
	RequestID string   `xml:"ResponseMetadata>RequestId"`
}

// handleRoot serves "/": STS, unless the request is signed for S3, which
// makes it S3's ListBuckets.
func (s *Server) handleRoot(w http.ResponseWriter, r *http.Request) {
	if auth, ok := parseSigV4Header(r.Header.Get("Authorization")); ok && auth.service == "s3" {
		s.handleS3(w, r)
		return
	}
	s.handleSTS(w, r)
}

func (s *Server) handleSTS(w http.ResponseWriter, r *http.Request) {
	requestID := newRequestID()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAWSBody+1))
	if err != nil || len(body) > maxAWSBody {
		writeSTSError(w, http.StatusBadRequest, "Sender", "InvalidRequest", "The request body could not be read.", requestID)
		return
	}
	orgID := s.signingOrgID(r)
	s.mu.Lock()
	s.state.STSCalls++
	fault := s.takeFault(orgID, true)
	s.mu.Unlock()

	switch fault.Kind {
	case "sts_5xx":
		status, code, message := http.StatusServiceUnavailable, "ServiceUnavailable", "Service is unable to handle request."
		if fault.Status >= 500 && fault.Status <= 599 && fault.Status != status {
			status, code, message = fault.Status, "InternalFailure", "An internal error has occurred."
		}
		writeSTSError(w, status, "Receiver", code, message, requestID)
		return
	case "sts_throttling":
		writeSTSError(w, http.StatusBadRequest, "Sender", "Throttling", "Rate exceeded", requestID)
		return
	case "sts_reject":
		// What a wrong endpoint or a broken proxy answers for any key.
		writeSTSError(w, http.StatusForbidden, "Sender", "InvalidClientTokenId", stsInvalidKeyMessage, requestID)
		return
	case "sts_drop":
		dropConnection(w)
		return
	case "sts_delay":
		select {
		case <-time.After(time.Duration(fault.DelayMS) * time.Millisecond):
		case <-r.Context().Done():
			return
		}
	}

	check := s.checkSigV4(r, body, "sts")
	switch check.verdict {
	case sigV4Missing:
		writeSTSError(w, http.StatusForbidden, "Sender", "MissingAuthenticationToken", "Request is missing Authentication Token", requestID)
		return
	case sigV4Malformed:
		writeSTSError(w, http.StatusBadRequest, "Sender", "IncompleteSignature", "Authorization header requires a valid Credential, SignedHeaders, Signature and X-Amz-Date.", requestID)
		return
	case sigV4UnknownKey:
		writeSTSError(w, http.StatusForbidden, "Sender", "InvalidClientTokenId", stsInvalidKeyMessage, requestID)
		return
	case sigV4Skewed:
		now := time.Now().UTC()
		msg := fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 15 min.)",
			check.signedAt.Format(amzDateFormat), now.Add(-maxClockSkew).Format(amzDateFormat), now.Format(amzDateFormat))
		if check.signedAt.After(now) {
			msg = fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + 15 min.)",
				check.signedAt.Format(amzDateFormat), now.Add(maxClockSkew).Format(amzDateFormat), now.Format(amzDateFormat))
		}
		writeSTSError(w, http.StatusForbidden, "Sender", "SignatureDoesNotMatch", msg, requestID)
		return
	case sigV4PayloadMismatch, sigV4BadSignature:
		writeSTSError(w, http.StatusForbidden, "Sender", "SignatureDoesNotMatch", badSignatureMessage, requestID)
		return
	}

	params := r.URL.Query()
	if r.Method == http.MethodPost {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			writeSTSError(w, http.StatusBadRequest, "Sender", "MalformedInput", "The request body is not a form.", requestID)
			return
		}
		for k, v := range form {
			params[k] = v
		}
	}
	if action := params.Get("Action"); action != "GetCallerIdentity" {
		writeSTSError(w, http.StatusBadRequest, "Sender", "InvalidAction",
			fmt.Sprintf("Could not find operation %s for version %s", action, params.Get("Version")), requestID)
		return
	}
	s.mu.Lock()
	s.accepted[check.auth.accessKeyID] = true
	s.mu.Unlock()
	writeXML(w, http.StatusOK, "text/xml", "x-amzn-RequestId", requestID, getCallerIdentityResponse{
		Xmlns: stsNamespace, Arn: check.org.ARN, UserID: check.org.UserID,
		Account: check.org.AccountID, RequestID: requestID,
	})
}

func writeSTSError(w http.ResponseWriter, status int, typ, code, message, requestID string) {
	e := stsErrorResponse{Xmlns: stsNamespace, RequestID: requestID}
	e.Error.Type, e.Error.Code, e.Error.Message = typ, code, message
	writeXML(w, status, "text/xml", "x-amzn-RequestId", requestID, e)
}

// writeXML answers v as an XML document, with AWS's request id header.
func writeXML(w http.ResponseWriter, status int, contentType, requestIDHeader, requestID string, v interface{}) {
	body, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set(requestIDHeader, requestID)
	w.Header().Set("Date", time.Now().UTC().Format(http.TimeFormat))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(body)
}
