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

// acceptReadBack lets a config write carry the read-only fields that a
// config read shows (version, key_expires_at, ...): each one equal to what
// a read shows now is dropped, and one that differs is a 400 that names
// it, since the write cannot set it. Any other unknown field is left for
// refuseUnknownFields.
func (b *backend) acceptReadBack(op *framework.PathOperation) *framework.PathOperation {
	write := op.Callback
	op.Callback = func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		var readOnly []string
		for field := range req.Data {
			if _, ok := d.Schema[field]; !ok {
				readOnly = append(readOnly, field)
			}
		}
		if len(readOnly) == 0 {
			return write(ctx, req, d)
		}
		if resp, err := b.invalidNameResponse(ctx, req.Storage, d.Get("name").(string)); resp != nil || err != nil {
			return resp, err
		}
		if err := b.ensureLoaded(ctx, req.Storage); err != nil {
			return nil, err
		}
		e, err := b.org(ctx, req.Storage, d.Get("name").(string))
		if err != nil || e == nil {
			// Nothing stored: every read-only field is unknown here.
			return write(ctx, req, d)
		}
		shown := configData(e, b.now())
		var differ []string
		for _, field := range readOnly {
			value, ok := shown[field]
			switch {
			case !ok:
			case sameJSON(value, req.Data[field]):
				delete(req.Data, field)
			default:
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
