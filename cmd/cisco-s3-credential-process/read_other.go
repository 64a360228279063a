//go:build !windows

package main

import "os"

// readRendered reads the file Vault Agent renders.
func readRendered(path string) ([]byte, error) { return os.ReadFile(path) }
