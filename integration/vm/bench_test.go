package vm

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestBenchInVM is `make bench-vm`, not a test: it runs make bench's start-up table
// (bench/start: berth, runc and crun, interleaved) inside the cgroup v2 VM and prints it.
// The VM is qemu TCG, so only the ratios mean anything: they are what a cgroup v2 host
// sees (the init born in its group by clone3, one cgroup directory, one cgroup2 mount).
// Skipped unless BERTH_VM_BENCH is set (BENCH_N: containers per runtime, default 10;
// BENCH_BASE: an older static berth build, measured beside it as "base").
func TestBenchInVM(t *testing.T) {
	if os.Getenv("BERTH_VM_BENCH") == "" {
		t.Skip("a benchmark, run by make bench-vm (BERTH_VM_BENCH=1)")
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Fatal("qemu-system-x86_64 not found: install qemu-system-x86 (bash .ci/deps)")
	}
	n := os.Getenv("BENCH_N")
	if n == "" {
		n = "10"
	}
	work := t.TempDir()
	berth := filepath.Join(work, "berth")
	bench := filepath.Join(work, "startbench")
	for _, b := range []struct {
		out, pkg string
		cgo      bool
	}{{berth, "../../cmd/berth", true}, {bench, "../../bench/start", false}} {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b.cgo {
			cmd = exec.Command("bash", "../../scripts/build.sh", b.out) // as the Makefile builds it
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", b.pkg, err, out)
		}
	}
	files := map[string]string{"bench/startbench": bench, "bench/config.json": benchConfig(t, berth, work)}
	for _, rt := range []string{"runc", "crun"} {
		p, err := exec.LookPath(rt)
		if err != nil {
			t.Logf("%s not found: left out", rt)
			continue
		}
		files["bin/"+rt] = p
		libs, err := sharedLibs(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range libs {
			files[strings.TrimPrefix(l, "/")] = l
		}
	}
	base := ""
	if b := os.Getenv("BENCH_BASE"); b != "" {
		files["bench/berth-base"] = b
		base = " -base /bench/berth-base"
	}
	k, err := findKernel(t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	mods, err := k.modulesFor("overlay")
	if err != nil {
		t.Fatal(err)
	}
	run := strings.Join([]string{
		"mkdir -p /b/rootfs/bin /b/rootfs/proc /b/rootfs/sys /b/rootfs/dev /b/rootfs/etc /b/rootfs/tmp",
		"cp /bin/busybox /b/rootfs/bin/busybox && ln -s busybox /b/rootfs/bin/true && ln -s busybox /b/rootfs/bin/sh",
		"cp /bench/config.json /b/config.json",
		"/bench/startbench -n " + n + " -bundle /b -berth /berth" + base + " 2>&1",
	}, " && ")
	initrd := filepath.Join(work, "initrd.cpio.gz")
	// The guest test binary is not run: busybox stands in for it.
	err = writeInitramfs(initrd, initramfsSpec{berth: berth, guest: "/bin/busybox", modules: mods, files: files, run: run})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, "-accel", "tcg", "-m", "1024", "-smp", "2",
		"-nographic", "-no-reboot", "-kernel", k.vmlinuz, "-initrd", initrd,
		"-append", "console=ttyS0 quiet panic=-1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	boot := time.Now()
	runErr := cmd.Run()
	console := strings.ReplaceAll(out.String(), "\r", "")
	begin := strings.Index(console, "BERTH-VM-BEGIN\n")
	m := regexp.MustCompile(`(?m)^BERTH-VM-END status=(\S+)$`).FindStringSubmatchIndex(console)
	if begin < 0 || m == nil {
		t.Fatalf("the VM gave no complete result (qemu: %v); console:\n%s", runErr, tail(console, 100))
	}
	t.Logf("cgroup v2 VM (qemu TCG, %v): make bench's start-up table; read the ratios only\n%s",
		time.Since(boot).Round(time.Second), console[begin+len("BERTH-VM-BEGIN\n"):m[0]])
	if status := console[m[2]:m[3]]; status != "0" {
		t.Errorf("the benchmark exited with status %s", status)
	}
}

// benchConfig is make bench's config.json (scripts/mkbundle.sh): `berth spec`, no terminal,
// `true`, ociVersion 1.0.2 (crun 1.8 knows no later one).
func benchConfig(t *testing.T, berth, work string) string {
	dir := filepath.Join(work, "bundle")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(berth, "spec", "--bundle", dir).CombinedOutput(); err != nil {
		t.Fatalf("berth spec: %v %s", err, out)
	}
	p := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["ociVersion"] = "1.0.2"
	proc := cfg["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = []string{"true"}
	if data, err = json.MarshalIndent(cfg, "", "\t"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// sharedLibs lists the libraries (and the loader) a dynamic binary needs, from ldd.
func sharedLibs(bin string) ([]string, error) {
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		return nil, err
	}
	var libs []string
	for _, l := range strings.Split(string(out), "\n") {
		for _, f := range strings.Fields(l) {
			if strings.HasPrefix(f, "/") {
				libs = append(libs, f)
			}
		}
	}
	return libs, nil
}
