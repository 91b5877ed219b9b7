package vm

import (
	"os"
	"strings"
	"testing"
)

// TestSystemdInVM boots the same VM with Debian's systemd as PID 1 (and dbus), and runs the
// guest tests of berth's systemd cgroup driver (guest/systemd_test.go) from a unit. systemd and
// dbus come from Debian's packages, unpacked with dpkg -x into a cache directory as the kernel
// is (.ci/deps fills it; the test downloads them when it is empty).
func TestSystemdInVM(t *testing.T) { runVMSuite(t, vmSuite{systemd: true, run: "Systemd"}) }

// systemdCmdline boots straight into the test unit: no default.target, no sysinit.target (and
// its udev, journald, tmpfiles... under TCG every unit costs), cgroup v2 only.
const systemdCmdline = "systemd.unit=berth-vm.target systemd.show_status=0 systemd.unified_cgroup_hierarchy=1 systemd.log_level=warning"

// findSystemdTree returns the unpacked systemd and dbus (cacheDir()/systemd-guest), downloading
// the packages of systemd-packages first when the cache has none.
func findSystemdTree(logf func(string, ...any)) (string, error) {
	return findTree("systemd-guest", "systemd-packages", "lib/systemd/systemd", logf)
}

// addSystemd puts the unpacked tree under /sd (stage1 copies it over the new root), with the
// units that run the guest tests and the few files a minimal system needs.
func addSystemd(c *cpioWriter, tree string, args []string) error {
	if err := addTree(c, "sd", tree); err != nil {
		return err
	}
	files := map[string]string{
		"etc/passwd":     "root:x:0:0:root:/root:/bin/sh\nmessagebus:x:100:101::/nonexistent:/bin/false\n",
		"etc/group":      "root:x:0:\nmessagebus:x:101:\n",
		"etc/machine-id": "",
		// containerd's CRI copies these into a host-network pod.
		"etc/hosts":       "127.0.0.1 localhost\n",
		"etc/resolv.conf": "nameserver 127.0.0.1\n",
		"etc/hostname":    "berthvm\n",
		"etc/os-release":  "ID=debian\nNAME=\"berth VM\"\n",
		"etc/systemd/system/berth-vm.target": `[Unit]
Description=berth guest tests
Requires=berth-vm.service dbus.socket
`,
		"etc/systemd/system/berth-vm.service": `[Unit]
Description=berth guest tests
DefaultDependencies=no
After=dbus.socket

[Service]
Type=oneshot
ExecStart=/berth-vm-tests
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
`,
		// dbus without sysinit.target and what it pulls in.
		"etc/systemd/system/dbus.socket.d/berth-vm.conf":  "[Unit]\nDefaultDependencies=no\n",
		"etc/systemd/system/dbus.service.d/berth-vm.conf": "[Unit]\nDefaultDependencies=no\n",
	}
	for _, d := range []string{"etc/systemd", "etc/systemd/system", "etc/systemd/system/dbus.socket.d", "etc/systemd/system/dbus.service.d"} {
		c.dir("sd/" + d)
	}
	for name, body := range files {
		c.file("sd/"+name, 0o644, []byte(body))
	}
	if err := addCRI(c); err != nil {
		return err
	}
	c.file("sd/berth-vm-tests", 0o755, []byte(strings.Replace(systemdStage, "@ARGS@", strings.Join(args, " "), 1)))
	return nil
}

// systemdStage runs the guest tests as the unit berth-vm.service and powers off. systemd has
// mounted /proc, /sys, /dev and cgroup2 and manages the tree's controllers itself.
const systemdStage = `#!/bin/sh
export PATH=/bin:/usr/bin
echo 1 > /proc/sys/kernel/printk
while read -r m args; do
	[ -n "$m" ] && insmod /lib/modules/$m $args
done < /lib/modules/order
# As in the plain VM: the state and bundles live on a tmpfs of their own, not on the root
# that holds /berth (berth's sealed binary overlays its directory with the state directory).
mount -t tmpfs tmpfs /tmp
echo "systemd $(systemctl --version | head -1) as PID 1; up $(cut -d' ' -f1 /proc/uptime) s"
echo BERTH-VM-BEGIN
BERTH_VM_GUEST=1 BERTH_VM_SYSTEMD=1 BERTH_BIN=/berth /guest.test @ARGS@ 2>&1
echo "BERTH-VM-END status=$?"
poweroff -f
`

// criBinaries are containerd and the CRI client the guest's CRI scenario runs (as a node
// would: containerd's CRI plugin, a handler for berth with SystemdCgroup = true, crictl).
// containerd's come from Debian's package (.ci/deps installs it), crictl from conformance/cri.
var criBinaries = map[string]string{
	"containerd": "/usr/bin/containerd", "containerd-shim-runc-v2": "/usr/bin/containerd-shim-runc-v2",
	"ctr": "/usr/bin/ctr", "crictl": "/var/cache/berth-cri/bin/crictl",
}

// criConfig is the guest's containerd: CRI on, berth the default handler with the systemd
// cgroup driver, pods on the host network (no CNI in the guest).
const criConfig = `version = 2
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp"]
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.6"
  enable_selinux = false
[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "berth"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth.options]
  BinaryName = "/berth"
  SystemdCgroup = true
`

// addCRI puts containerd, crictl, their config and two images (a pause look-alike and busybox)
// into the systemd guest, when this machine has them; the guest test skips otherwise.
func addCRI(c *cpioWriter) error {
	for _, src := range criBinaries {
		if _, err := os.Stat(src); err != nil {
			return nil
		}
	}
	c.dir("sd/cri")
	for name, src := range criBinaries {
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		c.file("sd/usr/bin/"+name, 0o755, data)
	}
	pause, err := busyboxImageArchive("registry.k8s.io/pause:3.6", []string{"sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1; done"})
	if err != nil {
		return err
	}
	busybox, err := busyboxImageArchive("docker.io/berth/busybox:1", []string{"sh"})
	if err != nil {
		return err
	}
	c.file("sd/cri/pause.tar", 0o644, pause)
	c.file("sd/cri/busybox.tar", 0o644, busybox)
	c.dir("sd/etc/containerd")
	c.file("sd/etc/containerd/config.toml", 0o644, []byte(criConfig))
	return nil
}
