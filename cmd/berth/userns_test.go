package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSubIDMapping(t *testing.T) {
	file := filepath.Join(t.TempDir(), "subuid")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	names := []string{"alice", "1000"}
	// Every range of the user, by name or uid, in file order, after the user's own id as 0.
	write("bob:100000:65536\nalice:165536:1000\n# comment\n1000:300000:10\nalice:bad:1\n")
	m, err := subIDMapping("uid", file, names, 1000)
	if got := fmt.Sprint(m); err != nil || got != "[{0 1000 1} {1 165536 1000} {1001 300000 10}]" {
		t.Errorf("map %s, %v", got, err)
	}
	for what, c := range map[string]struct{ file, want string }{
		"none":       {"bob:100000:65536\n", "no subordinate uid range for user alice (1000) in " + file},
		"host-root":  {"alice:0:65536\n", "holds host uid 0"},
		"own-id":     {"alice:900:200\n", "holds host uid 0 or the user's own"},
		"empty-file": {"", "usermod --add-subuids"},
	} {
		write(c.file)
		if _, err := subIDMapping("uid", file, names, 1000); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", what, err, c.want)
		}
	}
}
