package backend

// One Cisco organization, one config: two configs that rotate one key kill
// each other's keys, and their heals would take turns doing it.

import (
	"context"
	"fmt"
	"sort"
)

// sharingCiscoOrg names another config on the mount that acts on the same
// Cisco organization as cfg (the same token URL, client_id and org_id, or
// the same data_path), or returns "".
func (b *backend) sharingCiscoOrg(name string, cfg *orgConfig) string {
	others := b.orgs.Snapshot()
	names := make([]string, 0, len(others))
	for other := range others {
		names = append(names, other)
	}
	sort.Strings(names)
	for _, other := range names {
		if other == name {
			continue
		}
		if oc := others[other].config; oc.ciscoOrg() == cfg.ciscoOrg() || (cfg.DataPath != "" && oc.DataPath == cfg.DataPath) {
			return other
		}
	}
	return ""
}

// sharedOrgMessage says that two configs act on one Cisco organization.
func sharedOrgMessage(other string) string {
	return fmt.Sprintf("config/%s acts on the same Cisco organization (the same token URL, client_id and org_id, or the same "+
		"data_path): each rotation under one name kills the key the other serves. Keep one config per organization; "+
		"a rejected key of either is not rotated by the heal while both exist", other)
}

// blockHeal records on the rejected key why the heal does not rotate it.
func (o *lockedOrg) blockHeal(ctx context.Context, other string) {
	next := *o.e.key
	next.HealBlocked = sharedOrgMessage(other)
	o.b.logger.Error("not healing the rejected key: another config acts on the same Cisco organization", "name", o.name, "other", other)
	if err := o.storeKey(ctx, &next); err != nil {
		o.b.logger.Warn("could not store why the heal is blocked", "name", o.name, "error", err)
		o.setKey(&next)
	}
}
