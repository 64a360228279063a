# Vault Agent for the push recipes, in an agent of its own: a push that
# fails makes the agent restart its template runner after a wait that grows
# to 5 minutes, which would hold up any other template of the same agent.
# Give it the product's settings in its environment (SPLUNK_URL,
# SPLUNK_AWS_ACCOUNT, ...; see each script's header).
vault { address = "https://vault.example.com:8200" }
auto_auth {
  method "approle" {
    config = {
      role_id_file_path                   = "/etc/vault-agent/role-id"
      secret_id_file_path                 = "/etc/vault-agent/secret-id"
      remove_secret_id_file_after_reading = false
    }
  }
}
template {
  source      = "/etc/vault-agent/push/key-pair.json.ctmpl"
  destination = "/etc/vault-agent/push/splunk-key.json"
  perms       = "0600"
  exec {
    command = ["/etc/vault-agent/push/splunk.sh", "/etc/vault-agent/push/splunk-key.json"]
    timeout = "120s"
  }
}
