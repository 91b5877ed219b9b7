package vm

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// cpioWriter writes the "newc" cpio format the kernel unpacks as an initramfs.
type cpioWriter struct {
	w   io.Writer
	ino int
	n   int64 // bytes written, for padding
	err error
}

func (c *cpioWriter) write(b []byte) {
	if c.err != nil {
		return
	}
	var n int
	n, c.err = c.w.Write(b)
	c.n += int64(n)
}

func (c *cpioWriter) pad() {
	if r := c.n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

func (c *cpioWriter) entry(name string, mode uint32, rdevMajor, rdevMinor int, data []byte) {
	c.ino++
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		c.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	c.write([]byte(hdr))
	c.write([]byte(name + "\x00"))
	c.pad()
	c.write(data)
	c.pad()
}

const (
	sIFDIR = 0o040000
	sIFREG = 0o100000
	sIFLNK = 0o120000
	sIFCHR = 0o020000
)

func (c *cpioWriter) dir(name string)                      { c.entry(name, sIFDIR|0o755, 0, 0, nil) }
func (c *cpioWriter) file(name string, m uint32, d []byte) { c.entry(name, sIFREG|m, 0, 0, d) }
func (c *cpioWriter) symlink(name, target string)          { c.entry(name, sIFLNK|0o777, 0, 0, []byte(target)) }
func (c *cpioWriter) chardev(name string, maj, min int)    { c.entry(name, sIFCHR|0o600, maj, min, nil) }

func (c *cpioWriter) close() error {
	c.entry("TRAILER!!!", 0, 0, 0, nil)
	return c.err
}

// initramfsSpec is what goes into the image besides busybox and the init scripts.
type initramfsSpec struct {
	berth   string            // static berth binary -> /berth
	guest   string            // static guest test binary -> /guest.test
	modules []string          // .ko files -> /lib/modules/, loaded in this order
	modArgs map[string]string // module name (file name without .ko) -> insmod parameters
	extra   []string          // .ko files -> /lib/modules/, listed in order in /lib/modules/extra for the guest tests to load
	args    []string          // arguments for the guest test binary
	// systemdTree is an unpacked systemd + dbus (systemd_test.go): when set, the guest boots
	// it as PID 1, which runs the guest tests from a unit.
	systemdTree string
	// criuTree is an unpacked criu with its tools and libraries (checkpoint_test.go): it goes
	// under /cr, which stage1 copies over the new root, with runc and containerd.
	criuTree string
	// runcSuite adds runc's suite to the criu tree's /cr (runcsuite_test.go).
	runcSuite bool
	// files are more files (initramfs path -> host file, mode 0755), e.g. the benchmark's
	// runtimes and their libraries (bench_test.go); run, when set, is what the guest runs
	// instead of the guest tests.
	files map[string]string
	run   string
}

// writeInitramfs builds a gzip'd newc cpio at out.
func writeInitramfs(out string, s initramfsSpec) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	zw, _ := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	c := &cpioWriter{w: zw}
	for _, d := range []string{"bin", "dev", "proc", "sys", "newroot", "lib", "lib/modules"} {
		c.dir(d)
	}
	// The kernel opens /dev/console for init's stdio before init runs.
	c.chardev("dev/console", 5, 1)
	files := map[string]string{"bin/busybox": "/bin/busybox", "berth": s.berth, "guest.test": s.guest}
	for dst, src := range files {
		data, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
		c.file(dst, 0o755, data)
	}
	c.symlink("bin/sh", "busybox")
	made := map[string]bool{"bin": true, "lib": true, "dev": true}
	for dst, src := range s.files {
		for d, dirs := path.Dir(dst), []string(nil); ; d = path.Dir(d) {
			if d == "." || d == "/" || made[d] {
				for i := len(dirs) - 1; i >= 0; i-- {
					c.dir(dirs[i])
					made[dirs[i]] = true
				}
				break
			}
			dirs = append(dirs, d)
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
		c.file(dst, 0o755, data)
	}
	var order []string
	for _, ko := range s.modules {
		data, err := os.ReadFile(ko)
		if err != nil {
			return err
		}
		c.file("lib/modules/"+filepath.Base(ko), 0o644, data)
		order = append(order, strings.TrimSpace(filepath.Base(ko)+" "+s.modArgs[strings.TrimSuffix(filepath.Base(ko), ".ko")]))
	}
	c.file("lib/modules/order", 0o644, []byte(strings.Join(order, "\n")+"\n"))
	var extra []string
	for _, ko := range s.extra {
		data, err := os.ReadFile(ko)
		if err != nil {
			return err
		}
		c.file("lib/modules/"+filepath.Base(ko), 0o644, data)
		extra = append(extra, filepath.Base(ko))
	}
	c.file("lib/modules/extra", 0o644, []byte(strings.Join(extra, "\n")+"\n"))
	if s.criuTree != "" {
		if err := addCriu(c, s.criuTree); err != nil {
			return err
		}
		if s.runcSuite {
			if err := addRuncSuite(c); err != nil {
				return err
			}
		}
	}
	if s.systemdTree != "" {
		if err := addSystemd(c, s.systemdTree, s.args); err != nil {
			return err
		}
		c.file("init", 0o755, []byte(strings.Replace(stage1, "exec switch_root /newroot /init2", "exec switch_root /newroot /lib/systemd/systemd", 1)))
	} else {
		c.file("init", 0o755, []byte(stage1))
		s2 := strings.Replace(stage2, "@ARGS@", strings.Join(s.args, " "), 1)
		if s.run != "" {
			s2 = strings.Replace(s2, "BERTH_VM_GUEST=1 BERTH_BIN=/berth /guest.test "+strings.Join(s.args, " "), s.run, 1)
		}
		c.file("init2", 0o755, []byte(s2))
	}
	if err := c.close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// stage1 runs from the initramfs, whose root (rootfs) cannot be pivot_root'ed away, which
// containers need: it copies itself into a tmpfs and switch_root's there.
const stage1 = `#!/bin/sh
/bin/busybox --install -s /bin
mount -t tmpfs -o size=700m tmpfs /newroot
cp -a /bin /lib /berth /guest.test /newroot/
[ -e /init2 ] && cp -a /init2 /newroot/
for d in /lib64 /bench; do [ -d $d ] && cp -a $d /newroot/; done
[ -d /sd ] && cp -a /sd/. /newroot/ && rm -rf /sd
# The criu tree's files win over busybox's links of the same name (ip): unlink those first,
# so that cp does not write through a link into busybox.
if [ -d /cr ]; then
	(cd /cr && find . ! -type d) | while read -r f; do rm -f "/newroot/$f"; done
	cp -a /cr/. /newroot/ && rm -rf /cr
fi
mkdir -p /newroot/proc /newroot/sys /newroot/dev /newroot/tmp /newroot/run /newroot/etc
exec switch_root /newroot /init2
echo "BERTH-VM-END status=switch_root-failed"
poweroff -f
`

// stage2 sets up a pure cgroup v2 machine, runs the guest tests and powers off. Results go
// to the serial console between the sentinels the host looks for.
const stage2 = `#!/bin/sh
# /usr/sbin and /usr/bin hold criu, runc and containerd when the image has them.
export PATH=/bin:/sbin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
# A machine has its loopback up (criu's kernel probe connects through it).
ip link set lo up
# Keep kernel messages (the OOM killer's) off the console the results go to.
echo 1 > /proc/sys/kernel/printk
while read -r m args; do
	[ -n "$m" ] && insmod /lib/modules/$m $args
done < /lib/modules/order
ctl=""
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do ctl="$ctl +$c"; done
echo $ctl > /sys/fs/cgroup/cgroup.subtree_control
echo "root /sys/fs/cgroup/cgroup.subtree_control:" $(cat /sys/fs/cgroup/cgroup.subtree_control)
echo BERTH-VM-BEGIN
BERTH_VM_GUEST=1 BERTH_BIN=/berth /guest.test @ARGS@ 2>&1
echo "BERTH-VM-END status=$?"
poweroff -f
`
