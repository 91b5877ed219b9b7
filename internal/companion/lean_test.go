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

// Out of both builds, because their initialisers ran at every berth start: go-digest (its
// regexps; image-spec's Go types import it, so berth has its own, internal/oci) and
// cilium/ebpf (cgroups/ebpf.go). Both stay the tests' oracles, which is how the names below
// are known to be real.
func TestNoCostlyInitialisers(t *testing.T) {
	gone := []string{"github.com/opencontainers/go-digest", "github.com/opencontainers/image-spec", "github.com/cilium/ebpf"}
	for _, tags := range []string{"osusergo,netgo,urfave_cli_no_docs,lean", "osusergo,netgo,urfave_cli_no_docs"} {
		out, err := exec.Command("go", "list", "-deps", "-tags", tags, "github.com/berth-project/berth/cmd/berth").CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		for _, d := range strings.Fields(string(out)) {
			for _, g := range gone {
				if d == g || strings.HasPrefix(d, g+"/") {
					t.Errorf("the build with %s links %s", tags, d)
				}
			}
		}
	}
	out, err := exec.Command("go", "list", "-deps", "-test", "github.com/berth-project/berth/internal/oci", "github.com/berth-project/berth/cgroups").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, want := range []string{"github.com/opencontainers/go-digest", "github.com/opencontainers/image-spec/specs-go/v1", "github.com/cilium/ebpf/asm"} {
		if !strings.Contains(string(out), want+"\n") {
			t.Errorf("the tests do not link %s", want)
		}
	}
}
