package backend

// The refusal of a write whose request carries a field that its path does
// not know.

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// refuseUnknownFields runs callback only when the path knows every field
// of the request. Vault passes unknown fields on, and the framework only
// warns of them on a non-nil response: a mistyped rotaton_period=30d
// would be stored without it, and gracefull=true would rotate at once.
func refuseUnknownFields(callback framework.OperationFunc) framework.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		resp := unknownFieldsResponse(req.Data, d.Schema)
		if resp == nil {
			resp = bodyNameResponse(req.Data, d)
		}
		if resp != nil {
			// With an error, the framework adds no "Endpoint ignored these
			// unrecognized parameters" warning, which would contradict
			// the refusal.
			return resp, logical.ErrInvalidRequest
		}
		return callback(ctx, req, d)
	}
}

// bodyNameResponse is the 400 for a name in the body that is not the
// path's, or nil. The path's name wins in the framework, so rotate/acme
// with name=prod would rotate acme and answer success.
func bodyNameResponse(data map[string]interface{}, d *framework.FieldData) *logical.Response {
	body, ok := data["name"]
	if _, inSchema := d.Schema["name"]; !ok || !inSchema {
		return nil
	}
	path := d.Get("name").(string)
	if s, isString := body.(string); isString && s == path {
		return nil
	}
	return logical.ErrorResponse(fmt.Sprintf("the body's name %q is not the path's %q: the organization is named by the path alone; leave name out of the body",
		truncate(fmt.Sprint(body), 64), path))
}

// unknownFieldsResponse is the 400 that names the fields of data that
// schema does not have, each with the closest known field, or nil. It
// names fields, never their values, which may be secrets.
func unknownFieldsResponse(data map[string]interface{}, schema map[string]*framework.FieldSchema) *logical.Response {
	var unknown []string
	for field := range data {
		if _, ok := schema[field]; !ok {
			unknown = append(unknown, field)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	// name is part of the path, not a field to send.
	known := make([]string, 0, len(schema))
	for field := range schema {
		if field != "name" {
			known = append(known, field)
		}
	}
	sort.Strings(known)
	parts := make([]string, 0, len(unknown)+1)
	for _, field := range unknown {
		part := fmt.Sprintf("unknown field %q", truncate(field, 40))
		if near := closestField(field, known); near != "" {
			part += fmt.Sprintf("; did you mean %q?", near)
		} else {
			part += "."
		}
		parts = append(parts, part)
	}
	if len(known) == 0 {
		parts = append(parts, "This path takes no fields.")
	} else {
		parts = append(parts, "Known fields: "+strings.Join(known, ", ")+".")
	}
	return logical.ErrorResponse(strings.Join(parts, " "))
}

// closestField is the known field nearest to field by edit distance, or ""
// when none is near enough to be the one meant: at most a third of the
// field's length apart, and at least 2 edits allowed.
func closestField(field string, known []string) string {
	best, bestDist := "", maxSuggestDistance(field)+1
	for _, k := range known {
		if d := editDistance(strings.ToLower(field), k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

func maxSuggestDistance(field string) int {
	return max(2, len(field)/3)
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
