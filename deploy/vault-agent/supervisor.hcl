# Vault Agent as the shipper's process supervisor, for shippers that take a
# static key only: it starts the shipper with the key in its environment and
# restarts it on every key change. An agent in this mode renders no file
# templates: run it beside, not instead of, an agent that renders files.
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
env_template "AWS_ACCESS_KEY_ID" {
  contents             = "{{ with secret \"cisco-s3/creds/acme\" }}{{ .Data.access_key_id }}{{ end }}"
  error_on_missing_key = true
}
env_template "AWS_SECRET_ACCESS_KEY" {
  contents             = "{{ with secret \"cisco-s3/creds/acme\" }}{{ .Data.secret_access_key }}{{ end }}"
  error_on_missing_key = true
}
exec {
  command                   = ["/usr/local/bin/my-shipper", "--config", "/etc/my-shipper.conf"]
  restart_on_secret_changes = "always"
  restart_stop_signal       = "SIGTERM"
}
