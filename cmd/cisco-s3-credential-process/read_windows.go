//go:build windows

package main

import (
	"io"
	"os"

	"golang.org/x/sys/windows"
)

// readRendered reads the file Vault Agent renders, shared for deletion:
// the agent replaces it by a rename, which Windows refuses while a reader
// holds the file open without FILE_SHARE_DELETE (os.Open does not set it).
func readRendered(path string) ([]byte, error) {
	name, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, err
	}
	h, err := windows.CreateFile(name, windows.GENERIC_READ,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE,
		nil, windows.OPEN_EXISTING, windows.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(h), path)
	defer f.Close()
	return io.ReadAll(f)
}
