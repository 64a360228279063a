package backend

// The rule for the <name> of config/, rotate/, import/, verify/ and creds/.

import (
	"context"
	"errors"
	"regexp"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// nameRule states the rule that validName checks, for the 400 and the
// paths' help.
const nameRule = `1 to 64 characters of letters, digits, "-", "_" and "."; ` +
	`starting and ending with a letter or digit; no ".."`

const maxNameLength = 64

// namePattern is the <name> segment of every per-name path: any non-empty
// rest, so that every name reaches the handler, which answers one that the
// rule refuses with a 400 that states the rule, not a bare 404.
func namePattern() string { return `(?P<name>.+)` }

// validName reports whether name follows nameRule. Names become storage
// keys: the rule keeps out "/" (a sub-path) and ".." (which storage
// refuses as a relative path).
func validName(name string) bool {
	if name == "" || len(name) > maxNameLength || strings.Contains(name, "..") {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if alnum || (i > 0 && i < len(name)-1 && (c == '-' || c == '_' || c == '.')) {
			continue
		}
		return false
	}
	return true
}

// legacyName matches the names that versions before the rule accepted
// (Vault's GenericNameRegex), some of which the rule refuses, such as
// "_acme" or "ops@acme".
var legacyName = regexp.MustCompile(`^\w(([\w-.@]+)?\w)?$`)

// invalidNameResponse is the 400 for a name that the rule refuses, or nil
// when the request may go on. A legacy name that is already stored stays
// usable, so that it can be read, rotated and deleted after an upgrade.
func (b *backend) invalidNameResponse(ctx context.Context, s logical.Storage, name string) (*logical.Response, error) {
	if validName(name) {
		return nil, nil
	}
	if legacyName.MatchString(name) && !strings.Contains(name, "..") {
		e, err := b.org(ctx, s, name)
		var bad *unreadableEntryError
		switch {
		case e != nil || errors.As(err, &bad):
			return nil, nil
		case err != nil:
			return nil, err
		}
	}
	return logical.ErrorResponse("invalid name %q: a name is %s", truncate(name, maxNameLength+1), nameRule), nil
}

// withValidName runs callback only for a name that the rule accepts; any
// other gets the 400 of invalidNameResponse.
func (b *backend) withValidName(callback framework.OperationFunc) framework.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		if resp, err := b.invalidNameResponse(ctx, req.Storage, d.Get("name").(string)); resp != nil || err != nil {
			return resp, err
		}
		return callback(ctx, req, d)
	}
}
