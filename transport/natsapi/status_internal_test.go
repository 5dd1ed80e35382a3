package natsapi

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestEveryCodeHasAStatus finds the error code constants declared anywhere
// in the module (Code... = "camelCase") and checks that the status table
// names each one, so that a new code gets a status chosen on purpose rather
// than the 500 of an unknown one.
func TestEveryCodeHasAStatus(t *testing.T) {
	root := filepath.Join("..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Skipf("module root not found from %s: %v", root, err)
	}
	decl := regexp.MustCompile(`\bCode[A-Za-z]*\s*=\s*"([a-z][A-Za-z]*)"`)
	found := map[string]string{} // code → where
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".") && path != root) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range decl.FindAllStringSubmatch(string(src), -1) {
			found[m[1]] = path
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) < 10 {
		t.Fatalf("found only %d error codes in the module: %v", len(found), found)
	}
	for code, where := range found {
		if _, ok := statusByCode[code]; !ok {
			t.Errorf("error code %q (declared in %s) has no status in statusByCode", code, where)
		}
	}
}
