// Package vm runs berth's cgroup v2 tests where cgroup v2 is real: in a qemu VM (TCG, no KVM)
// booted once from Debian's kernel package and an initramfs built on the fly, holding busybox,
// a static berth and the static test binary of package guest, which runs inside and reports
// back on the serial console. See vm_test.go for the host side and guest/ for the checks.
//
// Three boots share that machinery: TestCgroupV2InVM (the plain machine), TestSystemdInVM
// (systemd as PID 1, systemd_test.go) and TestCheckpointInVM (checkpoint_test.go: Debian's
// criu, which works on this kernel and not on the host's, with runc and containerd, for the
// checkpoint/restore scenarios of guest/checkpoint*_test.go; see docs/checkpoint.md). Extra
// software comes from Debian packages unpacked into the cache, listed in systemd-packages and
// criu-packages (guesttree_test.go).
package vm
