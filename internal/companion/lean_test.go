package companion

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLeanBuildLeavesOut: the lean build links none of the packages it hands to its
// companion. One import of them anywhere on the lean build's path would bring their package
// initialisers back into every berth process.
func TestLeanBuildLeavesOut(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-tags", "osusergo,netgo,urfave_cli_no_docs,lean",
		"github.com/berth-project/berth/cmd/berth").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	for _, left := range []string{"github.com/checkpoint-restore/go-criu", "google.golang.org/protobuf", "github.com/klauspost/compress", "github.com/klauspost/pgzip", "html/template"} {
		for _, d := range deps {
			if d == left || strings.HasPrefix(d, left+"/") {
				t.Errorf("the lean build links %s", d)
			}
		}
	}
	// And the full build, the companion, has them: the list above names real packages.
	out, err = exec.Command("go", "list", "-deps", "-tags", "osusergo,netgo,urfave_cli_no_docs",
		"github.com/berth-project/berth/cmd/berth").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, want := range []string{"github.com/checkpoint-restore/go-criu/v7/rpc", "github.com/klauspost/compress/zstd"} {
		if !strings.Contains(string(out), want+"\n") {
			t.Errorf("the full build does not link %s", want)
		}
	}
}
