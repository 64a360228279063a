package ciscosim

import (
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// ListObjectsV2 over an organization's own folder: prefix, delimiter,
// max-keys, continuation-token, start-after and encoding-type=url, which
// is what aws s3 ls (with and without --recursive) uses.

const maxListKeys = 1000

type listBucketResult struct {
	XMLName               xml.Name       `xml:"ListBucketResult"`
	Xmlns                 string         `xml:"xmlns,attr"`
	Name                  string         `xml:"Name"`
	Prefix                string         `xml:"Prefix"`
	Delimiter             string         `xml:"Delimiter,omitempty"`
	MaxKeys               int            `xml:"MaxKeys"`
	EncodingType          string         `xml:"EncodingType,omitempty"`
	KeyCount              int            `xml:"KeyCount"`
	IsTruncated           bool           `xml:"IsTruncated"`
	ContinuationToken     string         `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string         `xml:"NextContinuationToken,omitempty"`
	StartAfter            string         `xml:"StartAfter,omitempty"`
	Contents              []listedObject `xml:"Contents"`
	CommonPrefixes        []commonPrefix `xml:"CommonPrefixes"`
}

type listedObject struct {
	Key          string `xml:"Key"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int    `xml:"Size"`
	StorageClass string `xml:"StorageClass"`
}

type commonPrefix struct {
	Prefix string `xml:"Prefix"`
}

func (s *Server) listObjectsV2(w http.ResponseWriter, r *http.Request, org OrgState, bucket, requestID string) {
	fail := func(status int, code, message string) {
		writeS3Error(w, status, s3Error{Code: code, Message: message, RequestID: requestID})
	}
	q := r.URL.Query()
	prefix, delimiter := q.Get("prefix"), q.Get("delimiter")
	// The key's policy allows listing only inside its own folder.
	if bucket != org.Bucket || prefix != org.Prefix && !strings.HasPrefix(prefix, org.Prefix+"/") {
		fail(http.StatusForbidden, "AccessDenied", "Access Denied")
		return
	}
	maxKeys := maxListKeys
	if v := q.Get("max-keys"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			fail(http.StatusBadRequest, "InvalidArgument", "Provided max-keys not an integer or within integer range")
			return
		}
		maxKeys = min(n, maxListKeys)
	}
	encode := func(v string) string { return v }
	switch q.Get("encoding-type") {
	case "":
	case "url":
		encode = s3URLEncode
	default:
		fail(http.StatusBadRequest, "InvalidArgument", "Invalid Encoding Method specified in Request")
		return
	}
	// Items after marker are listed: the continuation token names the last
	// item of the previous page; start-after is a key.
	marker := q.Get("start-after")
	if token := q.Get("continuation-token"); token != "" {
		raw, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil {
			fail(http.StatusBadRequest, "InvalidArgument", "The continuation token provided is incorrect")
			return
		}
		marker = string(raw)
	}

	res := listBucketResult{
		Xmlns: s3Namespace, Name: bucket, Prefix: encode(prefix), MaxKeys: maxKeys,
		ContinuationToken: q.Get("continuation-token"), StartAfter: encode(q.Get("start-after")),
	}
	if delimiter != "" {
		res.Delimiter = encode(delimiter)
	}
	if q.Get("encoding-type") != "" {
		res.EncodingType = "url"
	}
	last := ""
	for _, obj := range orgObjects(org.OrgID, org.Prefix) {
		if !strings.HasPrefix(obj.key, prefix) {
			continue
		}
		// An item is the key, or the common prefix it rolls up into.
		item, isPrefix := obj.key, false
		if delimiter != "" {
			if i := strings.Index(obj.key[len(prefix):], delimiter); i >= 0 {
				item, isPrefix = obj.key[:len(prefix)+i+len(delimiter)], true
			}
		}
		if item <= marker || item == last {
			continue
		}
		if res.KeyCount == maxKeys {
			// With max-keys=0 there is no last item to go on from.
			res.IsTruncated = maxKeys > 0
			break
		}
		last = item
		res.KeyCount++
		if isPrefix {
			res.CommonPrefixes = append(res.CommonPrefixes, commonPrefix{Prefix: encode(item)})
			continue
		}
		res.Contents = append(res.Contents, listedObject{
			Key: encode(obj.key), LastModified: obj.lastModified.UTC().Format("2006-01-02T15:04:05.000Z"),
			ETag: obj.etag, Size: len(obj.body), StorageClass: "STANDARD",
		})
	}
	if res.IsTruncated {
		res.NextContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(last))
	}
	writeXML(w, http.StatusOK, "application/xml", "x-amz-request-id", requestID, res)
}

// s3URLEncode encodes as S3 does for encoding-type=url, keeping "/" as it
// is; clients decode with a form-style unquote.
func s3URLEncode(v string) string {
	return strings.ReplaceAll(url.QueryEscape(v), "%2F", "/")
}
