package backend

import (
	"errors"
	"regexp"
	"strings"
)

// dataPath is the parsed "Data Path" of a Cisco-managed bucket.
type dataPath struct {
	Bucket, Region, Prefix string
}

func (p dataPath) String() string { return "s3://" + p.Bucket + "/" + p.Prefix }

func (p dataPath) ARN() string { return "arn:aws:s3:::" + p.Bucket }

var (
	bucketPattern = regexp.MustCompile(`^cisco-managed-([a-z]{2}(?:-[a-z]+)+-[0-9]{1,2})$`)
	prefixPattern = regexp.MustCompile(`^[A-Za-z0-9_.\-]+(?:/[A-Za-z0-9_.\-]+)*$`)
)

const dataPathShape = "data_path must look like s3://cisco-managed-<region>/<prefix>, " +
	"e.g. s3://cisco-managed-eu-central-1/1234567_0123456789abcdef0123456789abcdef01234567 (the s3:// is optional)"

// parseDataPath reads Cisco's Data Path: [s3://]cisco-managed-<region>/<prefix>[/].
func parseDataPath(s string) (dataPath, error) {
	rest := strings.TrimPrefix(strings.TrimSpace(s), "s3://")
	bucket, prefix, ok := strings.Cut(rest, "/")
	prefix = strings.TrimSuffix(prefix, "/")
	m := bucketPattern.FindStringSubmatch(bucket)
	if !ok || m == nil || !prefixPattern.MatchString(prefix) || strings.Contains("/"+prefix+"/", "/../") || strings.Contains("/"+prefix+"/", "/./") {
		return dataPath{}, errors.New(dataPathShape)
	}
	return dataPath{Bucket: bucket, Region: m[1], Prefix: prefix}, nil
}
