package backend

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"vault-plugin-secrets-cisco-s3/internal/ciscosim"
)

// Interleavings of the key check with rotations: the check runs outside
// the name's lock or joins a rotation's collapse, and must not let either
// serve a key that Cisco replaced or answer a rotation that did not happen.

// waitSimInFlight waits until Cisco is handling a rotation.
func (e *testEnv) waitSimInFlight() {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.sim.State().InFlight == 0 {
		if time.Now().After(deadline) {
			e.t.Fatal("no rotation reached Cisco")
		}
		time.Sleep(time.Millisecond)
	}
}

// An import that started before a rotation landed would store the
// dashboard key over the key that replaced it: it is refused instead.
func TestImport_RacingARotationIsRefused(t *testing.T) {
	env := newTestEnv(t)
	env.configure("acme", nil)
	env.mustRotate("acme")
	dashboard := env.refreshed()
	env.injectFault(ciscosim.Fault{Kind: "delay", DelayMS: 300})
	rotated := make(chan error, 1)
	go func() {
		resp, err := env.rotate("acme")
		if err == nil && resp.IsError() {
			err = resp.Error()
		}
		rotated <- err
	}()
	env.waitSimInFlight()
	resp, err := env.write("import/acme", dashboard)
	if err := <-rotated; err != nil {
		t.Fatalf("the rotation failed: %v", err)
	}
	var coded logical.HTTPCodedError
	if !errors.As(err, &coded) || coded.Code() != http.StatusConflict {
		t.Fatalf("import racing a rotation: resp %v, err %v; want 409", resp, err)
	}
	if org := env.simOrg(); org.CurrentKeyID == dashboard["access_key_id"] {
		t.Fatal("the rotation did not replace the dashboard key")
	}
	env.assertServesSimKey("acme")
	if k, _ := getKey(t0ctx, env.storage, "acme"); k.Origin != originRotation {
		t.Fatalf("stored key came from %s", k.Origin)
	}
}
