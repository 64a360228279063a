// Package cisco is the client of Cisco's "Refresh S3 Bucket Key" API
// (Cisco Umbrella and Cisco Secure Access): the OAuth2 token, rotateKey and
// the check of an API key, the parsing of Cisco's replies into a typed key
// or a typed error, and the per-API-key limiter that keeps calls within
// Cisco's documented rate limits.
//
// It knows nothing of Vault: it takes a context and connection settings and
// returns a typed key or a typed error. The secrets engine in backend
// stores, schedules and serves what it returns.
package cisco
