package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// minTokenLen is the shortest administrator token accepted from the file (an
// operator may write their own; the generated one is 64 hex digits).
const minTokenLen = 16

// loadOrCreateToken returns the administrator token stored at path, writing
// a new random one (mode 0600) if the file does not exist. It refuses a file
// that others may read or write, and one whose token is too short.
func loadOrCreateToken(path string) (token string, created bool, err error) {
	token, err = readToken(path)
	if err == nil {
		return token, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", false, fmt.Errorf("generating the administrator token: %w", err)
	}
	token = hex.EncodeToString(b[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another process wrote it between our read and our create.
		token, err = readToken(path)
		return token, false, err
	}
	if err != nil {
		return "", false, fmt.Errorf("writing the administrator token: %w", err)
	}
	_, err = f.WriteString(token + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return "", false, fmt.Errorf("writing the administrator token to %s: %w", path, err)
	}
	return token, true, nil
}

func readToken(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("administrator token file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("administrator token file %s has mode %04o, so others may read it; run: chmod 600 %s", path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	token := strings.TrimSpace(string(data))
	if len(token) < minTokenLen || strings.ContainsFunc(token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return "", fmt.Errorf("administrator token file %s must hold one token of at least %d printable characters without spaces; delete it to have a new one generated", path, minTokenLen)
	}
	return token, nil
}
