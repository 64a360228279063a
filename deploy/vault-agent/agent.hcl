# Vault Agent on the shipper's host: renders the key pair that
# cisco-s3-credential-process hands to the shipper's AWS SDK. The file is
# readable by the agent's user only: run the agent as the shipper's user.
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
  source      = "/etc/vault-agent/credential-process.json.ctmpl"
  destination = "/etc/logship/cisco-s3.json"
  perms       = "0600"
}
