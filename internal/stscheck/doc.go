// Package stscheck checks an AWS key pair with STS GetCallerIdentity,
// signed with aws-sdk-go-v2's Signature Version 4 signer: valid, invalid
// (and which half of the key AWS rejected) or unknown (no answer about the
// key). It remembers which STS endpoints gave no answer, so that callers
// that would rather not wait can skip them.
//
// It knows nothing of Vault: it takes a context, an endpoint and a key,
// and returns a Result. The secrets engine in backend decides what a
// result means for the key it serves.
package stscheck
