//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// raftNode is one vault server of a 3-node integrated-storage cluster.
type raftNode struct {
	*fileVault
	id string
}

func newRaftNode(t *testing.T, id, plugins string) *raftNode {
	t.Helper()
	dir := t.TempDir()
	apiPort, clusterPort := freePort(t), freePort(t)
	if err := os.MkdirAll(filepath.Join(dir, "raft"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "vault.hcl")
	hcl := fmt.Sprintf(`
storage "raft" {
  path                   = %q
  node_id                = %q
  performance_multiplier = 1
}
listener "tcp" {
  address         = "127.0.0.1:%d"
  cluster_address = "127.0.0.1:%d"
  tls_disable     = true
}
api_addr         = "http://127.0.0.1:%d"
cluster_addr     = "http://127.0.0.1:%d"
plugin_directory = %q
disable_mlock    = true
log_level        = "debug"
`, filepath.Join(dir, "raft"), id, apiPort, clusterPort, apiPort, clusterPort, plugins)
	if err := os.WriteFile(cfg, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	return &raftNode{fileVault: &fileVault{vault: &vault{addr: fmt.Sprintf("http://127.0.0.1:%d", apiPort), dir: dir}, config: cfg}, id: id}
}

func (n *raftNode) active(t *testing.T) bool {
	t.Helper()
	out, code := n.run(t, "status")
	if code != 0 {
		return false
	}
	var st struct {
		Sealed bool `json:"sealed"`
		IsSelf bool `json:"is_self"`
	}
	return json.Unmarshal([]byte(out), &st) == nil && !st.Sealed && st.IsSelf
}

// voters counts the voters in the raft configuration.
func (n *raftNode) voters(t *testing.T) int {
	t.Helper()
	out, code := n.run(t, "operator", "raft", "list-peers")
	if code != 0 {
		return 0
	}
	var peers struct {
		Data struct {
			Config struct {
				Servers []struct {
					Voter bool `json:"voter"`
				} `json:"servers"`
			} `json:"config"`
		} `json:"data"`
	}
	if json.Unmarshal([]byte(out), &peers) != nil {
		return 0
	}
	voters := 0
	for _, s := range peers.Data.Config.Servers {
		if s.Voter {
			voters++
		}
	}
	return voters
}

// formRaftCluster starts three nodes, the first of them active, and waits
// until all three vote.
func formRaftCluster(t *testing.T, plugins string) []*raftNode {
	t.Helper()
	nodes := []*raftNode{newRaftNode(t, "node1", plugins), newRaftNode(t, "node2", plugins), newRaftNode(t, "node3", plugins)}
	leader := nodes[0]
	leader.start(t)
	leader.initAndUnseal(t)
	for _, n := range nodes[1:] {
		n.token, n.unsealKey = leader.token, leader.unsealKey
		n.start(t)
		waitFor(t, time.Minute, n.id+" to join", func() bool {
			_, code := n.run(t, "operator", "raft", "join", leader.addr)
			return code == 0
		})
		n.must(t, "operator", "unseal", n.unsealKey)
	}
	// Autopilot promotes a joined node only after its stabilization time;
	// losing the leader before that would leave no quorum.
	waitFor(t, 2*time.Minute, "three voters", func() bool { return leader.voters(t) == 3 })
	return nodes
}

// TestRaftCluster proves the plugin on a 3-node Raft cluster: standby
// reads, failover, one rotation per period, rejoin and a global reload.
func TestRaftCluster(t *testing.T) {
	plugins := pluginDir(t)
	s := startSim(t)
	began := time.Now()
	nodes := formRaftCluster(t, plugins)
	leader := nodes[0]
	leader.enablePlugin(t, plugins)
	leader.configure(t, s, "acme", simClient, simSecret, "rotation_period=1m")
	leader.must(t, "write", "-f", mountPrefix+"/rotate/acme")
	t.Logf("cluster formed and configured in %v", time.Since(began).Round(time.Second))

	for _, n := range nodes[1:] {
		waitFor(t, 30*time.Second, "a standby read through "+n.id, func() bool {
			return servesSimKey(t, n, s)
		})
	}

	// Kill the active node's process.
	var killed *raftNode
	for _, n := range nodes {
		if n.active(t) {
			killed = n
		}
	}
	if killed == nil {
		t.Fatal("no active node")
	}
	killedAt := s.org(t, simOrg)
	killed.p.kill()
	t.Logf("killed the active node %s", killed.id)
	var survivors []*raftNode
	for _, n := range nodes {
		if n != killed {
			survivors = append(survivors, n)
		}
	}
	waitFor(t, time.Minute, "a new active node", func() bool {
		return survivors[0].active(t) || survivors[1].active(t)
	})
	for _, n := range survivors {
		waitFor(t, 30*time.Second, "reads through "+n.id+" after failover", func() bool {
			out, code := n.run(t, "read", mountPrefix+"/creds/acme")
			return code == 0 && len(out) > 0
		})
	}

	// Automatic rotation continues on the new active node.
	waitFor(t, waitRotate, "an automatic rotation after failover", func() bool {
		return s.org(t, simOrg).Rotations > killedAt.Rotations
	})
	for _, n := range survivors {
		waitFor(t, 30*time.Second, n.id+" to serve the simulator's key", func() bool {
			return servesSimKey(t, n, s)
		})
	}

	// The killed node comes back, rejoins and serves the same key.
	killed.start(t)
	killed.must(t, "operator", "unseal", killed.unsealKey)
	waitFor(t, time.Minute, killed.id+" to rejoin and serve the key", func() bool {
		return servesSimKey(t, killed, s)
	})

	// A global reload keeps serving the key.
	var active *raftNode
	for _, n := range nodes {
		if n.active(t) {
			active = n
		}
	}
	active.must(t, "plugin", "reload", "-plugin="+pluginName, "-scope=global")
	for _, n := range nodes {
		waitFor(t, time.Minute, n.id+" to serve the key after a global reload", func() bool {
			return servesSimKey(t, n, s)
		})
	}

	// About one rotation per period across the whole run: no rotation per
	// node, no burst after the failover. One manual rotation, then at most
	// one a minute, plus one of slack for timing.
	elapsed := time.Since(began)
	rotations := s.org(t, simOrg).Rotations
	limit := 1 + int(elapsed/time.Minute) + 1
	t.Logf("%d rotations in %v (limit %d)", rotations, elapsed.Round(time.Second), limit)
	if rotations > limit {
		t.Fatalf("%d rotations in %v: more than one per period", rotations, elapsed.Round(time.Second))
	}
}

// servesSimKey reports whether a read of creds/acme through node n answers
// with the simulator's current key; a failed read is not fatal.
func servesSimKey(t *testing.T, n *raftNode, s *sim) bool {
	t.Helper()
	out, code := n.run(t, "read", mountPrefix+"/creds/acme")
	if code != 0 {
		return false
	}
	var resp struct {
		Data map[string]interface{} `json:"data"`
	}
	return json.Unmarshal([]byte(out), &resp) == nil && resp.Data["access_key_id"] == s.org(t, simOrg).CurrentKeyID
}
