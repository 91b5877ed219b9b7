package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// SCMP_CMP_MASKED_EQ with a datum outside its mask (found by seccomp's FuzzLibseccomp): as
// under runc (libseccomp), the datum counts within the mask only, so kill's signal 0 matches
// "sig & 0xff == 0x100" and kill -0 is refused. berth's rule never matched before.
func TestSeccompMaskedEqualDatumOutsideMask(t *testing.T) {
	eperm := uint(1)
	e := newEnv(t, "sh", "-c", "kill -0 1; echo kill=$?")
	e.spec.Linux.Seccomp = seccompProfile(specs.LinuxSyscall{Names: []string{"kill"}, Action: specs.ActErrno, ErrnoRet: &eperm,
		Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0xff, ValueTwo: 0x100, Op: specs.OpMaskedEqual}}})
	r := e.run("sc-masked")
	if r.code != 0 || !strings.Contains(r.stdout, "kill=1") {
		t.Errorf("berth: exit %d, out %q err %q; want kill -0 refused (kill=1)", r.code, r.stdout, r.stderr)
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc not installed: no side-by-side comparison")
	}
	bundle := t.TempDir()
	data, _ := json.Marshal(e.spec)
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("runc", "--root", t.TempDir(), "run", "--bundle", bundle, "sc-masked-runc").CombinedOutput()
	if err != nil {
		t.Skipf("runc run: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "kill=1") {
		t.Errorf("runc: %q; the test's premise (libseccomp masks the datum) does not hold", out)
	}
}
