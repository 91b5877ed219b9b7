package integration

import (
	"archive/tar"
	"os/exec"
	"strings"
	"testing"
)

// overlayXattrLayer is a layer whose entries carry overlayfs' own xattrs, in both namespaces
// (trusted.overlay.* for root's store, user.overlay.* for an ordinary user's, mounted
// userxattr): /bin marked opaque (it would hide the base layer's busybox), /fromroot
// redirected to / and /meta a metacopy file redirected to /etc/passwd (they would show the
// base layer's files under other names).
func overlayXattrLayer(t *testing.T, layout string) {
	t.Helper()
	x := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			for _, ns := range []string{"trusted", "user"} {
				m["SCHILY.xattr."+ns+".overlay."+kv[i]] = kv[i+1]
			}
		}
		return m
	}
	addRawLayer(t, layout, "base", "ovlx", []tar.Header{
		{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755, PAXRecords: x("opaque", "y")},
		{Name: "fromroot/", Typeflag: tar.TypeDir, Mode: 0o755, PAXRecords: x("redirect", "/")},
		{Name: "meta", Typeflag: tar.TypeReg, Mode: 0o644, PAXRecords: x("metacopy", "", "redirect", "/etc/passwd")},
	}, nil)
	exec.Command("chmod", "-R", "a+rX", layout).Run()
}

// The view a container of that layer must have: the base layer's /bin, an empty /fromroot
// and an empty /meta.
const overlayXattrCheck = `ls /bin/busybox && ls -A /fromroot | wc -l && wc -c < /meta`

func checkOverlayXattrView(t *testing.T, code int, stdout, stderr string) {
	t.Helper()
	if code != 0 || strings.Fields(stdout) == nil || strings.Join(strings.Fields(stdout), " ") != "/bin/busybox 0 0" {
		t.Errorf("a layer's overlay xattrs were honoured: exit %d, stdout %q (want /bin/busybox, 0 entries in /fromroot, 0 bytes in /meta), stderr %q", code, stdout, stderr)
	}
}

// TestImageLayerOverlayXattrsIgnored: overlayfs' xattrs carried by a layer's entries are not
// set in root's store (trusted.overlay.*: opaque, redirect, metacopy would be honoured on a
// lower layer) nor in an ordinary user's (user.overlay.*, read with userxattr): a layer says
// what it deletes only through whiteouts.
func TestImageLayerOverlayXattrsIgnored(t *testing.T) {
	t.Run("root", func(t *testing.T) {
		layout := copyLayout(t)
		overlayXattrLayer(t, layout)
		e := newEnv(t)
		r := e.berth("run", "--image", layout+":ovlx", "ovlx", "sh", "-c", overlayXattrCheck)
		checkOverlayXattrView(t, r.code, r.stdout, r.stderr)
	})
	t.Run("ordinary-user", func(t *testing.T) {
		u := rlImageEnsureUser(t, "berth-rlimage", true, true)
		layout := rlImageLayout(t, u)
		overlayXattrLayer(t, layout)
		r := u.berth(t, "run", "--image", layout+":ovlx", "rl-ovlx", "sh", "-c", overlayXattrCheck)
		checkOverlayXattrView(t, r.code, r.stdout, r.stderr)
		rlImageNothingLeft(t, u, "rl-ovlx")
	})
}
