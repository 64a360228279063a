package backend

// A config read written back as it is: the read-modify-write of scripts
// and config-as-code tools (vault read -format=json ... | jq .data | vault
// write ... @-).

import (
	"context"
	"encoding/json"
	"sort"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// acceptReadBack lets a config write carry what a config read shows. A
// field whose value is what a read shows now is dropped: the read-only ones
// (version, key_expires_at, ...), and the writable ones too, whose read
// shows computed values (the provider's URLs, the gap of a schedule as
// rotation_period) that would otherwise be stored as overrides or clash
// with another setting. A read-only field that differs is a 400 that names
// it; a writable one that differs is a change. Any other unknown field is
// left for refuseUnknownFields.
func (b *backend) acceptReadBack(op *framework.PathOperation) *framework.PathOperation {
	write := op.Callback
	op.Callback = func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		if len(req.Data) == 0 {
			return write(ctx, req, d)
		}
		name := d.Get("name").(string)
		if resp, err := b.invalidNameResponse(ctx, req.Storage, name); resp != nil || err != nil {
			return resp, err
		}
		if err := b.ensureLoaded(ctx, req.Storage); err != nil {
			return nil, err
		}
		e, err := b.org(ctx, req.Storage, name)
		if err != nil || e == nil {
			// Nothing stored: nothing was read.
			return write(ctx, req, d)
		}
		shown := configData(e, b.now())
		var differ []string
		for field, sent := range req.Data {
			value, ok := shown[field]
			_, writable := d.Schema[field]
			switch {
			case !ok || field == "name":
			case sameJSON(value, sent):
				// The framework reads its own copy of the fields.
				delete(req.Data, field)
				delete(d.Raw, field)
			case !writable:
				differ = append(differ, field)
			}
		}
		if len(differ) > 0 {
			sort.Strings(differ)
			return logical.ErrorResponse("%s: read-only, and not what a read shows now (the key may have changed since "+
				"your read): a config write cannot set them. Leave them out, or write back a fresh read", strings.Join(differ, ", ")), logical.ErrInvalidRequest
		}
		return write(ctx, req, d)
	}
	return op
}

// sameJSON reports whether two values encode the same: a read's value and
// what a client sends back after a JSON round trip.
func sameJSON(a, b interface{}) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	if errA != nil || errB != nil {
		return false
	}
	var va, vb interface{}
	if json.Unmarshal(ja, &va) != nil || json.Unmarshal(jb, &vb) != nil {
		return false
	}
	na, _ := json.Marshal(va)
	nb, _ := json.Marshal(vb)
	return string(na) == string(nb)
}
