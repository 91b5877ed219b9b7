package integration

// The workshop labs (docs/labs/*.md) run end to end, each page in a fresh directory with its
// own berth --root, by the lab runner (cmd/berth-labs -check): a step whose command fails or
// whose output no longer shows what its page says it prints fails the test. BERTH_LABS='regex'
// on the page's file name runs some of them.

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

func TestLabs(t *testing.T) {
	pages, err := filepath.Glob("../docs/labs/[0-9]*.md")
	if err != nil || len(pages) == 0 {
		t.Fatalf("no lab pages under docs/labs: %v", err)
	}
	runner := filepath.Join(t.TempDir(), "berth-labs")
	build := exec.Command("go", "build", "-o", runner, "../cmd/berth-labs")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the lab runner: %v\n%s", err, out)
	}
	var pick *regexp.Regexp
	if re := os.Getenv("BERTH_LABS"); re != "" {
		pick = regexp.MustCompile(re)
	}
	for _, page := range pages {
		name := filepath.Base(page)
		if pick != nil && !pick.MatchString(name) {
			continue
		}
		t.Run(name, func(t *testing.T) {
			out, err := exec.Command(runner, "-check", "-berth", berthBin, page).CombinedOutput()
			if err != nil {
				t.Errorf("%s: %v\n%s", name, err, out)
			} else {
				t.Logf("%s", out)
			}
		})
	}
}
