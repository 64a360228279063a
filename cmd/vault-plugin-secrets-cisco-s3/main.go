// Command vault-plugin-secrets-cisco-s3 is the Vault plugin binary.
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/plugin"

	"vault-plugin-secrets-cisco-s3/backend"
)

func main() {
	apiClientMeta := &api.PluginAPIClientMeta{}
	flags := apiClientMeta.FlagSet()
	showVersion := flags.Bool("version", false, "print the version this binary was built as, which its registration's -version must name, and exit")
	if err := flags.Parse(os.Args[1:]); err != nil {
		fatal(err)
	}
	if *showVersion {
		fmt.Println(backend.Version)
		return
	}
	if err := plugin.ServeMultiplex(&plugin.ServeOpts{
		BackendFactoryFunc: backend.Factory,
		// Vault's TLS for plugins is set up through the environment.
		TLSProviderFunc: api.VaultPluginTLSProvider(apiClientMeta.GetTLSConfig()),
	}); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	hclog.New(&hclog.LoggerOptions{}).Error("plugin shutting down", "error", err)
	os.Exit(1)
}
