package backend

// One Cisco organization, one config: two configs that rotate one key kill
// each other's keys, and their heals would take turns doing it.

import (
	"fmt"
	"sort"
)

// sharingCiscoOrg names another config on the mount that acts on the same
// Cisco organization as cfg (the same token URL, client_id and org_id, or
// the same data_path), or returns "".
func (b *backend) sharingCiscoOrg(name string, cfg *orgConfig) string {
	// Every config read and write asks, so the walk copies nothing and
	// builds no string: 10,000 organizations cost one pass of compares.
	var sharing []string
	b.orgs.Range(func(other string, e *orgEntry) bool {
		if other != name && e != nil && sameCiscoOrg(e.config, cfg) {
			sharing = append(sharing, other)
		}
		return true
	})
	if len(sharing) == 0 {
		return ""
	}
	sort.Strings(sharing)
	return sharing[0]
}

// sameCiscoOrg reports whether two configs act on one Cisco organization:
// the same token URL, client_id and org_id, or the same data_path.
func sameCiscoOrg(a, b *orgConfig) bool {
	return a.ClientID == b.ClientID && a.OrgID == b.OrgID && a.tokenURL() == b.tokenURL() ||
		b.DataPath != "" && a.DataPath == b.DataPath
}

// sharedOrgMessage says that two configs act on one Cisco organization.
func sharedOrgMessage(other string) string {
	return fmt.Sprintf("config/%s acts on the same Cisco organization (the same token URL, client_id and org_id, or the same "+
		"data_path): each rotation under one name kills the key the other serves. Keep one config per organization; "+
		"a rejected key of either is not rotated by the heal while both exist", other)
}
