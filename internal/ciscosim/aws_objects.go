package ciscosim

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"
)

// The log files in each organization's bucket folder, as Cisco writes
// them: gzipped CSV under <prefix>/<type>logs/<date>/. They are generated
// from the org id, so they are the same on every run and every call.

// s3Object is one object in a bucket.
type s3Object struct {
	key          string
	body         []byte
	etag         string // quoted, as S3 sends it
	lastModified time.Time
}

// logFile is one generated log file: its type and the start of the ten
// minutes it covers.
type logFile struct {
	kind  string // dns, proxy or firewall
	start time.Time
}

var logFiles = []logFile{
	{"dns", time.Date(2025, 3, 12, 22, 0, 0, 0, time.UTC)},
	{"dns", time.Date(2025, 3, 12, 22, 10, 0, 0, time.UTC)},
	{"dns", time.Date(2025, 3, 13, 0, 0, 0, 0, time.UTC)},
	{"proxy", time.Date(2025, 3, 12, 22, 0, 0, 0, time.UTC)},
	{"firewall", time.Date(2025, 3, 12, 22, 0, 0, 0, time.UTC)},
}

// orgObjects returns the objects under an organization's prefix, sorted
// by key as S3 lists them.
func orgObjects(orgID, prefix string) []s3Object {
	objects := make([]s3Object, 0, len(logFiles))
	for _, f := range logFiles {
		name := f.start.Format("2006-01-02-15-04")
		sum := sha1.Sum([]byte(orgID + "/" + f.kind + "/" + name))
		key := fmt.Sprintf("%s/%slogs/%s/%s-%s.csv.gz", prefix, f.kind, f.start.Format("2006-01-02"), name, hex.EncodeToString(sum[:2]))
		body := gzipBytes(logLines(orgID, f))
		md5sum := md5.Sum(body)
		objects = append(objects, s3Object{
			key:          key,
			body:         body,
			etag:         `"` + hex.EncodeToString(md5sum[:]) + `"`,
			lastModified: f.start.Add(10*time.Minute + 37*time.Second), // uploaded after its window
		})
	}
	sort.Slice(objects, func(i, j int) bool { return objects[i].key < objects[j].key })
	return objects
}

// logLines is a couple of CSV lines in the shape of Cisco's logs of kind.
func logLines(orgID string, f logFile) string {
	at := func(sec int) string {
		return f.start.Add(time.Duration(sec) * time.Second).Format("2006-01-02 15:04:05")
	}
	var rows []string
	switch f.kind {
	case "dns":
		rows = []string{
			fmt.Sprintf(`"%s","laptop-%s","laptop-%s","10.10.1.100","203.0.113.7","Allowed","1 (A)","NOERROR","example.com.","Software/Technology"`, at(13), orgID, orgID),
			fmt.Sprintf(`"%s","laptop-%s","laptop-%s","10.10.1.101","203.0.113.7","Blocked","1 (A)","NOERROR","malware.example.net.","Malware"`, at(42), orgID, orgID),
		}
	case "proxy":
		rows = []string{
			fmt.Sprintf(`"%s","laptop-%s","10.10.1.100","203.0.113.7","93.184.216.34","text/html","ALLOWED","https://example.com/","","200","1256"`, at(5), orgID),
			fmt.Sprintf(`"%s","laptop-%s","10.10.1.101","203.0.113.7","198.51.100.20","application/octet-stream","BLOCKED","https://malware.example.net/x.exe","","403","0"`, at(31), orgID),
		}
	case "firewall":
		rows = []string{
			fmt.Sprintf(`"%s","network-%s","CDFW Tunnel Device","OUTBOUND","6","10.10.1.100","51234","93.184.216.34","443","ALLOW"`, at(9), orgID),
			fmt.Sprintf(`"%s","network-%s","CDFW Tunnel Device","OUTBOUND","17","10.10.1.101","53211","198.51.100.53","53","BLOCK"`, at(50), orgID),
		}
	}
	return strings.Join(rows, "\n") + "\n"
}

// gzipBytes compresses s; with no name or time in the header the result
// is the same every time.
func gzipBytes(s string) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write([]byte(s))
	_ = zw.Close()
	return buf.Bytes()
}
