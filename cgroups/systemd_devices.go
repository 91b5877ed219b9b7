package cgroups

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	sd "github.com/coreos/go-systemd/v22/dbus"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// deviceAllow is one DeviceAllow entry as the unit property holds it: a device node (systemd
// reads "/dev/char/MAJ:MIN" as the numbers) or a group ("char-pts", "block-*"), and "rwm" bits.
type deviceAllow struct {
	Path  string
	Perms string
}

// deviceProps gives systemd the device policy of linux.resources.devices when it can express
// it exactly: the rules deny everything and then only allow (the usual shape: containerd's,
// podman's, the defaults berth adds), each allowed set being a device, a major of a driver
// /proc/devices names, or every device of a type. Then DevicePolicy=strict with that
// DeviceAllow list, or DevicePolicy=auto with no list when everything is allowed. Any other
// shape gives no property: berth's own eBPF program (devices_ebpf.go), which the files carry
// in every case, enforces the rules alone, and systemd adds none of its own (auto).
func deviceProps(rules []specs.LinuxDeviceCgroup) ([]sd.Property, bool) {
	if len(rules) == 0 {
		return nil, false
	}
	parsed, err := parseDeviceRules(rules, false)
	if err != nil {
		return nil, false
	}
	start := -1
	for i, r := range parsed {
		if !r.allow && r.typ == 0 && r.access == accAll {
			start = i
		}
	}
	if start < 0 {
		return nil, false
	}
	var allow []deviceAllow
	for _, r := range parsed[start+1:] {
		if !r.allow {
			return nil, false
		}
		if r.typ == 0 && r.major < 0 && r.minor < 0 && r.access == accAll {
			return []sd.Property{prop("DevicePolicy", "auto"), prop("DeviceAllow", []deviceAllow{})}, true
		}
		types := []int32{r.typ}
		if r.typ == 0 {
			types = []int32{devChar, devBlock}
		}
		for _, typ := range types {
			path, ok := devicePath(typ, r.major, r.minor)
			if !ok {
				return nil, false
			}
			allow = append(allow, deviceAllow{Path: path, Perms: permString(r.access)})
		}
	}
	// An empty DeviceAllow clears the unit's list (a non-empty one adds to it): cleared first,
	// so that an update replaces the list instead of growing it.
	return []sd.Property{prop("DevicePolicy", "strict"), prop("DeviceAllow", []deviceAllow{}), prop("DeviceAllow", allow)}, true
}

func devicePath(typ int32, major, minor int64) (string, bool) {
	kind := "char"
	if typ == devBlock {
		kind = "block"
	}
	switch {
	case major >= 0 && minor >= 0:
		return fmt.Sprintf("/dev/%s/%d:%d", kind, major, minor), true
	case major < 0 && minor < 0:
		return kind + "-*", true
	case minor < 0:
		name := driverName(kind, major)
		return kind + "-" + name, name != ""
	}
	return "", false // "*:N" has no systemd spelling
}

// driverName is the name /proc/devices gives a major of a type ("pts" for char 136).
func driverName(kind string, major int64) string {
	f, err := os.Open("/proc/devices")
	if err != nil {
		return ""
	}
	defer f.Close()
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch l {
		case "Character devices:":
			section = "char"
			continue
		case "Block devices:":
			section = "block"
			continue
		}
		var n int64
		var name string
		if section == kind {
			if c, _ := fmt.Sscanf(l, "%d %s", &n, &name); c == 2 && n == major {
				return name
			}
		}
	}
	return ""
}

func permString(access int32) string {
	s := ""
	if access&accRead != 0 {
		s += "r"
	}
	if access&accWrite != 0 {
		s += "w"
	}
	if access&accMknod != 0 {
		s += "m"
	}
	return s
}
