// Package credprocess turns the key pair that Vault Agent renders into the
// output of an AWS credential_process, with an expiry that makes every AWS
// SDK run the process again within seconds.
//
// The AWS SDKs read a static key once, when a client is built, and keep it
// for the life of the process. They refresh only credentials that expire.
// So a long-running shipper picks up a rotated key only if its credentials
// carry an expiry: this package stamps one a few seconds ahead, at the time
// the process runs, never at the time the file was rendered. A file that
// stops changing (Vault unreachable) therefore keeps working with the last
// key, and no SDK is ever handed credentials that have already expired.
//
// When the SDKs run the process (measured in the end-to-end suite):
//   - aws-sdk-go-v2 (default CredentialsCache, no expiry window): at expiry,
//     so at most once per Lifetime while the shipper makes requests;
//   - botocore and the Ruby SDK: their refresh windows (botocore 10 and 15
//     minutes, Ruby 5) are longer than Lifetime, so before every request.
package credprocess

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Lifetime is how long the printed credentials are good for, at least.
// It bounds how long a shipper keeps a key after the rendered file changed;
// 2 s keeps a scheduled or graceful rotation within AWS's own propagation
// delay at the shipper.
const Lifetime = 2 * time.Second

// Rendered is the file Vault Agent renders: credential_process's own
// format without Expiration, so that it changes only when the key does.
type Rendered struct {
	Version         int    `json:"Version"`
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
}

// Output is what credential_process prints (AWS's version 1 format).
type Output struct {
	Version         int    `json:"Version"`
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	Expiration      string `json:"Expiration"`
}

// ErrEmpty is the error for a file with no key pair: the template rendered
// before Vault had a key, or the file is not the one Vault Agent renders.
var ErrEmpty = errors.New("the file holds no key pair (AccessKeyId and SecretAccessKey must both be set)")

// Expiry is the expiry stamped at now: at least Lifetime ahead, rounded up
// to a whole second, since some SDKs parse only whole seconds.
func Expiry(now time.Time) time.Time {
	t := now.UTC().Add(Lifetime)
	if r := t.Truncate(time.Second); !r.Equal(t) {
		return r.Add(time.Second)
	}
	return t
}

// Print parses the rendered file and returns credential_process's output
// with the expiry stamped at now. Its errors never quote the file: it holds
// a secret.
func Print(file []byte, now time.Time) ([]byte, error) {
	var r Rendered
	dec := json.NewDecoder(bytes.NewReader(file))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		var syntax *json.SyntaxError
		var field *json.UnmarshalTypeError
		switch {
		case errors.Is(err, io.EOF):
			return nil, ErrEmpty
		case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
			return nil, errors.New("the file is not JSON: render it with the template in docs/operations.md")
		case errors.As(err, &field):
			return nil, fmt.Errorf("the file's field %q is not a %s", field.Field, field.Type)
		}
		// An unknown field; its name is not quoted, as it could be anything.
		return nil, errors.New("the file has fields besides Version, AccessKeyId and SecretAccessKey: render it with the template in docs/operations.md")
	}
	if r.Version != 1 {
		return nil, fmt.Errorf("the file's Version is %d; credential_process output version 1 is the only one", r.Version)
	}
	if r.AccessKeyID == "" || r.SecretAccessKey == "" {
		return nil, ErrEmpty
	}
	return json.Marshal(Output{
		Version:         1,
		AccessKeyID:     r.AccessKeyID,
		SecretAccessKey: r.SecretAccessKey,
		Expiration:      Expiry(now).Format(time.RFC3339),
	})
}
