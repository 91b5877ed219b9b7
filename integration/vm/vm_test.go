package vm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestCgroupV2InVM boots one VM with a pure cgroup v2 hierarchy and every controller enabled,
// runs the guest package's tests inside it against real berth containers, and reports each
// guest test as a subtest here, with its output.
//
// It needs qemu-system-x86_64 (apt: qemu-system-x86), busybox-static, gcc for the static
// berth, and Debian's kernel package (cached by .ci/deps, else downloaded with apt-get).
// Without qemu it fails, unless BERTH_VM_SKIP is set, which turns that into a skip.
func TestCgroupV2InVM(t *testing.T) { runVMSuite(t, vmSuite{}) }

// vmSuite is what one boot of the VM holds besides berth, busybox and the guest tests.
type vmSuite struct {
	// systemd boots Debian's systemd as PID 1 (systemd_test.go).
	systemd bool
	// criu adds Debian's criu with what it runs and links, runc, containerd and the kernel
	// modules a dump needs (checkpoint_test.go).
	criu bool
	// runcSuite adds runc's own integration suite to the criu guest (runcsuite_test.go).
	runcSuite bool
	// run is the guest's -test.run when $BERTH_VM_RUN does not say (empty: every test).
	run string
}

// runVMSuite builds berth and the guest tests, boots the VM and reports the guest's results.
func runVMSuite(t *testing.T, s vmSuite) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		if os.Getenv("BERTH_VM_SKIP") != "" {
			t.Skip("qemu-system-x86_64 not found and BERTH_VM_SKIP is set")
		}
		t.Fatal("qemu-system-x86_64 not found: install qemu-system-x86 (bash .ci/deps), or set BERTH_VM_SKIP=1 to skip the cgroup v2 VM suite")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Fatal("/bin/busybox not found: install busybox-static (bash .ci/deps)")
	}
	start := time.Now()
	work := t.TempDir()

	// Build the two static binaries while the kernel is found.
	type built struct {
		what string
		err  error
		out  []byte
	}
	ch := make(chan built, 2)
	berth := filepath.Join(work, "berth")
	guest := filepath.Join(work, "guest.test")
	go func() {
		// As the Makefile builds it (scripts/build.sh): static, since the waiting stage runs
		// inside the rootfs, and with musl when musl-gcc is there.
		cmd := exec.Command("bash", "../../scripts/build.sh", berth)
		out, err := cmd.CombinedOutput()
		ch <- built{"berth", err, out}
	}()
	go func() {
		cmd := exec.Command("go", "test", "-c", "-o", guest, "./guest")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		ch <- built{"guest tests", err, out}
	}()
	k, kerr := findKernel(t.Logf)
	var sdTree, crTree string
	var sdErr, crErr error
	if s.systemd {
		sdTree, sdErr = findSystemdTree(t.Logf)
	}
	if s.criu {
		crTree, crErr = findCriuTree(t.Logf)
	}
	for i := 0; i < 2; i++ {
		b := <-ch
		if b.err != nil {
			t.Fatalf("building %s: %v\n%s", b.what, b.err, b.out)
		}
	}
	if kerr != nil {
		t.Fatal(kerr)
	}
	if sdErr != nil {
		t.Fatal(sdErr)
	}
	if crErr != nil {
		t.Fatal(crErr)
	}
	// brd gives the guest a block device (/dev/ram0, 1:0) for io.max and device rules; berth
	// seals its own binary in an overlay mount.
	names := []string{"brd", "overlay"}
	if s.criu {
		names = append(names, criuModules...)
	}
	mods, err := k.modulesFor(names...)
	if err != nil {
		t.Fatal(err)
	}
	// BFQ and null_blk (a blk-mq device BFQ can schedule) are loaded by the guest test of
	// io.bfq.weight, after the tests of io.weight.
	extra, err := k.modulesFor("bfq", "null_blk")
	if err != nil {
		t.Fatal(err)
	}
	// The checkpoint scenarios (containerd and podman round trips included) take 1.5 to 4
	// minutes of VM time, by the machine's load: they get more.
	timeout, vmTime := "300s", 8*time.Minute
	if s.criu {
		timeout, vmTime = "660s", 12*time.Minute
	}
	if s.runcSuite {
		timeout, vmTime = "1200s", 22*time.Minute
	}
	args := []string{"-test.v", "-test.timeout", timeout}
	if r := os.Getenv("BERTH_VM_RUN"); r != "" {
		args = append(args, "-test.run", "'"+r+"'")
	} else if s.run != "" {
		args = append(args, "-test.run", "'"+s.run+"'")
	}
	initrd := filepath.Join(work, "initrd.cpio.gz")
	err = writeInitramfs(initrd, initramfsSpec{
		berth: berth, guest: guest, modules: mods, extra: extra, args: args,
		modArgs: map[string]string{"brd": "rd_nr=1 rd_size=8192"}, systemdTree: sdTree,
		criuTree: crTree, runcSuite: s.runcSuite,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kernel %s; built in %v", k.vmlinuz, time.Since(start).Round(time.Millisecond))

	// TCG only: a nested KVM guest hangs on these machines.
	ctx, cancel := context.WithTimeout(context.Background(), vmTime)
	defer cancel()
	cmdline := "console=ttyS0 quiet panic=-1"
	if s.systemd {
		cmdline += " " + systemdCmdline
	}
	cmd := exec.CommandContext(ctx, qemu, "-accel", "tcg", "-m", "1024", "-smp", "2",
		"-nographic", "-no-reboot", "-kernel", k.vmlinuz, "-initrd", initrd,
		"-append", cmdline)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	boot := time.Now()
	runErr := cmd.Run()
	console := strings.ReplaceAll(out.String(), "\r", "")
	t.Logf("VM ran for %v", time.Since(boot).Round(time.Millisecond))

	begin := strings.Index(console, "BERTH-VM-BEGIN\n")
	m := regexp.MustCompile(`(?m)^BERTH-VM-END status=(\S+)$`).FindStringSubmatchIndex(console)
	if begin < 0 || m == nil {
		t.Fatalf("the VM gave no complete result (qemu: %v); console:\n%s", runErr, tail(console, 200))
	}
	if s.systemd {
		t.Logf("console before the tests:\n%s", tail(console[:begin], 10))
	}
	body := console[begin+len("BERTH-VM-BEGIN\n") : m[0]]
	status := console[m[2]:m[3]]
	results := parseGoTestV(body)
	for _, r := range results {
		r := r
		t.Run(r.name, func(t *testing.T) {
			if r.output != "" {
				t.Log("\n" + r.output)
			}
			if r.took != "" {
				t.Logf("took %s in the VM", r.took)
			}
			switch r.result {
			case "FAIL":
				t.Fail()
			case "SKIP":
				t.Skip()
			case "PASS":
			default:
				t.Error("the guest test did not finish")
			}
		})
	}
	if status != "0" {
		failed := false
		for _, r := range results {
			failed = failed || r.result != "PASS" && r.result != "SKIP"
		}
		if !failed {
			// A failure outside any test (build, panic in TestMain, timeout).
			t.Errorf("guest tests exited with status %s:\n%s", status, body)
		} else {
			t.Errorf("guest tests exited with status %s", status)
		}
	}
	if len(results) == 0 {
		t.Errorf("no guest test ran:\n%s", body)
	}
}

type guestResult struct {
	name, result, output, took string
}

// parseGoTestV splits `go test -v` output into top-level tests (the guest runs them one at a
// time, so their lines do not interleave).
func parseGoTestV(s string) []guestResult {
	var out []guestResult
	cur := -1
	runRe := regexp.MustCompile(`^=== (RUN|CONT|PAUSE|NAME)\s+(\S+)`)
	endRe := regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+) \(([^)]*)\)`)
	for _, l := range strings.Split(s, "\n") {
		if m := runRe.FindStringSubmatch(l); m != nil {
			name := m[2]
			if i := strings.IndexByte(name, '/'); i >= 0 {
				if cur >= 0 {
					out[cur].output += l + "\n"
				}
				continue
			}
			if m[1] == "RUN" {
				out = append(out, guestResult{name: name})
				cur = len(out) - 1
			}
			continue
		}
		if m := endRe.FindStringSubmatch(l); m != nil && !strings.Contains(m[2], "/") {
			for i := range out {
				if out[i].name == m[2] {
					out[i].result, out[i].took = m[1], m[3]
				}
			}
			continue
		}
		if cur >= 0 && l != "" && l != "PASS" && l != "FAIL" {
			out[cur].output += l + "\n"
		}
	}
	return out
}

func tail(s string, lines int) string {
	ls := strings.Split(s, "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return fmt.Sprintf("%s", strings.Join(ls, "\n"))
}
