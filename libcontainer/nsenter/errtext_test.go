//go:build cgo

package nsenter

import (
	"os"
	"os/exec"
	"testing"
)

// errtext.h is what errtextgen writes now: Go's own errno texts, so the C stage's errors
// read as the Go init's under any C library.
func TestErrTextMatchesGo(t *testing.T) {
	have, err := os.ReadFile("errtext.h")
	if err != nil {
		t.Fatal(err)
	}
	// errtextgen writes into its working directory: it runs in a temporary one.
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/gen", "./errtextgen")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	gen := exec.Command(dir + "/gen")
	gen.Dir = dir
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want, err := os.ReadFile(dir + "/errtext.h")
	if err != nil {
		t.Fatal(err)
	}
	if string(have) != string(want) {
		t.Fatal("libcontainer/nsenter/errtext.h is stale: go generate ./libcontainer/nsenter")
	}
}
