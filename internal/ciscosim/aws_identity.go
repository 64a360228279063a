package ciscosim

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// bucketPrefix starts the name of every bucket Cisco manages; the region
// ends it.
const bucketPrefix = "cisco-managed-"

const defaultRegion = "us-east-1"

// AWSIdentity is where an organization's key lives in AWS: the IAM user
// STS names and the bucket folder S3 lets it read. Everything but Region
// is derived from the org id, so it is the same on every run.
type AWSIdentity struct {
	Region string `json:"region"`
	Bucket string `json:"bucket"`
	// Prefix is the org's folder in Bucket, without a trailing slash:
	// "<orgID>_<40 hex digits>".
	Prefix string `json:"prefix"`
	// DataPath is "s3://<Bucket>/<Prefix>/", as Cisco's dashboard shows it.
	DataPath  string `json:"data_path"`
	AccountID string `json:"account_id"`
	ARN       string `json:"arn"`
	UserID    string `json:"user_id"`
}

func newAWSIdentity(orgID, region string) AWSIdentity {
	if region == "" {
		region = defaultRegion
	}
	sum := sha1.Sum([]byte(orgID))
	prefix := orgID + "_" + hex.EncodeToString(sum[:])
	bucket := bucketPrefix + region
	account := accountID(orgID)
	return AWSIdentity{
		Region:    region,
		Bucket:    bucket,
		Prefix:    prefix,
		DataPath:  "s3://" + bucket + "/" + prefix + "/",
		AccountID: account,
		ARN:       "arn:aws:iam::" + account + ":user/cisco-managed-" + orgID,
		UserID:    userID(orgID),
	}
}

// accountID is a 12-digit AWS account number derived from the org id.
func accountID(orgID string) string {
	sum := sha256.Sum256([]byte("account:" + orgID))
	return fmt.Sprintf("%012d", binary.BigEndian.Uint64(sum[:8])%1_000_000_000_000)
}

// userID is an IAM user id ("AIDA" and 17 characters) derived from the
// org id.
func userID(orgID string) string {
	sum := sha256.Sum256([]byte("user:" + orgID))
	b := make([]byte, 17)
	for i := range b {
		b[i] = keyIDAlphabet[int(sum[i])%len(keyIDAlphabet)]
	}
	return "AIDA" + string(b)
}
