// Package vm runs berth's cgroup v2 tests where cgroup v2 is real: in a qemu VM (TCG, no KVM)
// booted once from Debian's kernel package and an initramfs built on the fly, holding busybox,
// a static berth and the static test binary of package guest, which runs inside and reports
// back on the serial console. See vm_test.go for the host side and guest/ for the checks.
package vm
