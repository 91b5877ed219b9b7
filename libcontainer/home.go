package libcontainer

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// withHome adds HOME to env when the config leaves it out, as runc does: the home directory of
// uid in the container's /etc/passwd, or "/" when the file or the user is missing. It runs in
// the init once the container's root is its root, so the file read is the container's.
func withHome(env []string, uid uint32) []string {
	for _, e := range env {
		if strings.HasPrefix(e, "HOME=") {
			return env
		}
	}
	home := "/"
	// The image's file, opened by root before the device cgroup applies: only a regular file
	// is opened (a device node would act on the host's device, a fifo block for ever).
	if st, err := os.Stat("/etc/passwd"); err != nil || !st.Mode().IsRegular() {
		return append(env, "HOME="+home)
	}
	if f, err := os.Open("/etc/passwd"); err == nil {
		defer f.Close()
		want := strconv.FormatUint(uint64(uid), 10)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// name:password:uid:gid:gecos:home:shell
			fields := strings.Split(sc.Text(), ":")
			if len(fields) >= 6 && fields[2] == want && fields[5] != "" {
				home = fields[5]
				break
			}
		}
	}
	return append(env, "HOME="+home)
}
