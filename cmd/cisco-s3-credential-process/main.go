// Command cisco-s3-credential-process is an AWS credential_process for log
// shippers that run for weeks: it prints the key pair that Vault Agent
// renders into FILE, with an expiry a few seconds ahead, so that the
// shipper's AWS SDK runs it again and picks up every rotated key without a
// restart. Put it in the shipper's AWS config file:
//
//	[default]
//	credential_process = /usr/local/bin/cisco-s3-credential-process /etc/logship/cisco-s3.json
//
// It reads only the file: no Vault call, no network.
package main

import (
	"fmt"
	"os"
	"time"

	"vault-plugin-secrets-cisco-s3/internal/credprocess"
)

// Version is stamped at release time with -ldflags "-X main.Version=v1.2.3".
var Version = "dev"

const usage = `usage: cisco-s3-credential-process FILE

Prints the key pair in FILE (rendered by Vault Agent from
cisco-s3/creds/<name>) as AWS credential_process output that expires in
%s, so that the AWS SDK runs it again and follows every rotation.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr *os.File) int {
	if len(args) == 1 && (args[0] == "-version" || args[0] == "--version") {
		fmt.Fprintln(stdout, Version)
		return 0
	}
	if len(args) != 1 || args[0] == "" || args[0][0] == '-' {
		fmt.Fprintf(stderr, usage, credprocess.Lifetime)
		return 2
	}
	file, err := readRendered(args[0])
	if err != nil {
		// The path error names the file and the cause, nothing it holds.
		fmt.Fprintf(stderr, "cisco-s3-credential-process: %v (is Vault Agent rendering it?)\n", err)
		return 1
	}
	out, err := credprocess.Print(file, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "cisco-s3-credential-process: %s: %v\n", args[0], err)
		return 1
	}
	if _, err := stdout.Write(append(out, '\n')); err != nil {
		return 1
	}
	return 0
}
