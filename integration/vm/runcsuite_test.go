package vm

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRuncSuiteInVM boots the checkpoint guest (checkpoint_test.go) with runc's own
// integration suite (v1.1.5, as conformance/runc installs it in /var/cache/berth-runc-suite)
// and runs its checkpoint.bats there, where criu works, against berth and runc
// (guest/runcsuite_test.go). It takes 4 to 8 minutes under TCG, so it runs only when
// $BERTH_VM_RUNC_SUITE is set (as the host's runc suite runs only by make runc-suite); skipped
// too when the suite is not installed.
func TestRuncSuiteInVM(t *testing.T) {
	if os.Getenv("BERTH_VM_RUNC_SUITE") == "" {
		t.Skip("runc's checkpoint.bats in the VM takes minutes: set BERTH_VM_RUNC_SUITE=1 to run it")
	}
	if _, err := os.Stat(filepath.Join(runcSuiteDir, "tests/integration/checkpoint.bats")); err != nil {
		t.Skipf("runc's suite is not installed (bash conformance/runc/install.sh): %v", err)
	}
	runVMSuite(t, vmSuite{criu: true, runcSuite: true, run: "RuncSuite"})
}

const runcSuiteDir = "/var/cache/berth-runc-suite/runc-1.1.5"

// addRuncSuite puts the suite's tests/integration (its busybox image, not its Debian one: a
// placeholder stands in, so that its image script does not download it) and its recvtty
// under /cr/runc-suite, with a `go` that answers `go env GOARCH` (the image script asks).
func addRuncSuite(c *cpioWriter) error {
	c.dir("cr/runc-suite")
	c.dir("cr/runc-suite/tests")
	src := filepath.Join(runcSuiteDir, "tests/integration")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		name := "cr/runc-suite/tests/integration"
		if rel != "." {
			name += "/" + rel
		}
		switch {
		case d.IsDir():
			c.dir(name)
		case rel == "testdata/debian-amd64.tar.xz":
			c.file(name, 0o644, nil)
		case d.Type().IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			c.file(name, uint32(fi.Mode().Perm()), data)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("initramfs: runc's suite: %w", err)
	}
	recvtty, err := os.ReadFile(filepath.Join(runcSuiteDir, "contrib/cmd/recvtty/recvtty"))
	if err != nil {
		return fmt.Errorf("initramfs: runc's suite: %w (bash conformance/runc/install.sh)", err)
	}
	for _, d := range []string{"contrib", "contrib/cmd", "contrib/cmd/recvtty", "bin"} {
		c.dir("cr/runc-suite/" + d)
	}
	c.file("cr/runc-suite/contrib/cmd/recvtty/recvtty", 0o755, recvtty)
	// The suite's update_config pipes jq into `awk ... getline<"-"`, which busybox's awk does
	// not read as stdin (the config came out empty): mawk comes first for bats.
	c.symlink("cr/runc-suite/bin/awk", "/usr/bin/mawk")
	// bats and the suite start with #!/usr/bin/env bash; busybox has env in /bin only.
	c.symlink("cr/usr/bin/env", "/bin/busybox")
	c.file("cr/runc-suite/bin/go", 0o755, []byte(strings.Join([]string{
		"#!/bin/sh", `[ "$*" = "env GOARCH" ] && echo amd64 && exit 0`, `echo "go: not in this guest" >&2`, "exit 1", ""}, "\n")))
	return nil
}
