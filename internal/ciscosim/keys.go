package ciscosim

import (
	"crypto/rand"
	"encoding/base64"
	"math/big"
)

const keyIDAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
const secretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+"

// newKeyPair returns an AWS-shaped access key id and secret.
func newKeyPair() (string, string) {
	return "AKIA" + randomFrom(keyIDAlphabet, 16), randomFrom(secretAlphabet, 40)
}

func randomFrom(alphabet string, n int) string {
	b := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic(err)
		}
		b[i] = alphabet[v.Int64()]
	}
	return string(b)
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
