package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestCompanionAnswersAsBerth: the berth under test is the lean build, and what it hands to
// its companion (internal/companion: checkpoint, restore, criu's status, image load and
// unpack) reads exactly as the
// full build's own answer, byte for byte and with the same exit status. The full build is the
// one scripts/build.sh embedded, left beside the sources.
func TestCompanionAnswersAsBerth(t *testing.T) {
	full, err := filepath.Abs("../internal/companion/payload/berth-full")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(full); err != nil {
		t.Fatalf("the companion scripts/build.sh built: %v", err)
	}
	root, bundle := t.TempDir(), t.TempDir()
	run := func(bin string, args ...string) result {
		cmd := exec.Command(bin, append([]string{"--root", root}, args...)...)
		cmd.Dir = bundle // restore's default bundle: an empty directory, the same in both runs
		var r result
		out, err := cmd.Output()
		r.stdout = string(out)
		if ee, ok := err.(*exec.ExitError); ok {
			r.code, r.stderr = ee.ExitCode(), string(ee.Stderr)
		} else if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, args := range [][]string{
		{"--version"},
		{"features"},
		{"checkpoint", "--help"},
		{"restore", "--help"},
		{"checkpoint", "no-such-container"},
		{"restore", "--image-path", bundle, "no-such-container"},
		{"image", "load", "--help"},
		{"image", "unpack", "no-such-layout", filepath.Join(bundle, "out")},
	} {
		lean, companion := run(berthBin, args...), run(full, args...)
		if lean != companion {
			t.Errorf("berth %v:\nlean      %+v\ncompanion %+v", args, lean, companion)
		}
	}
}
