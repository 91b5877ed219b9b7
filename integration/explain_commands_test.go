package integration

import (
	"path/filepath"
	"strings"
	"testing"
)

// narrated fails the test unless out (berth --explain's stderr) has a line for each step,
// "step   what it did", and contains each of details.
func narrated(t *testing.T, what, out string, steps []string, details ...string) {
	t.Helper()
	for _, s := range steps {
		if !strings.Contains("\n"+out, "\n"+s+" ") {
			t.Errorf("%s: no step %s in:\n%s", what, s, out)
		}
	}
	for _, d := range details {
		if !strings.Contains(out, d) {
			t.Errorf("%s: %q not narrated in:\n%s", what, d, out)
		}
	}
}

// --explain narrates the commands that act on a live container, not only create and start:
// exec, update, pause, resume and delete, on a bundle `runc spec` wrote.
func TestExplainLaterCommands(t *testing.T) {
	bundle := runcSpecBundle(t, "sleep", "100")
	e := newEnv(t)
	e.mustBerth("run", "-d", "--bundle", bundle, "xc")

	r := e.mustBerth("--explain", "exec", "xc", "true")
	narrated(t, "exec", r.stderr, []string{"libcontainer.Load", "libcontainer.Exec", "libcontainer.launch.start",
		"namespaces.EnterThread", "libcontainer.runInit", "libcontainer.setCapabilities", "libcontainer.execUser"},
		"read state.json: running", "setns_init: about to exec")

	r = e.mustBerth("--explain", "update", "--pids-limit", "30", "xc")
	narrated(t, "update", r.stderr, []string{"libcontainer.Load", "libcontainer.Update", "cgroups.writeFile"},
		"merge the new pids into the limits", "pids.max = 30", "state.json with the merged limits")

	r = e.mustBerth("--explain", "pause", "xc")
	narrated(t, "pause", r.stderr, []string{"libcontainer.Load", "libcontainer.Pause", "cgroups.writeFile"}, "FROZEN")
	r = e.mustBerth("--explain", "resume", "xc")
	narrated(t, "resume", r.stderr, []string{"libcontainer.Resume", "cgroups.writeFile"}, "read state.json: paused", "THAWED")

	r = e.mustBerth("--explain", "delete", "--force", "xc")
	narrated(t, "delete --force", r.stderr, []string{"libcontainer.Load", "libcontainer.Delete", "libcontainer.destroy", "cgroups.removeDir"},
		"running container, --force", "kill -9 ", "rm -r "+filepath.Join(e.root, "xc"))
}

// run --image narrates the image's lookup (layout, tag, manifest), each layer looked up in
// the store (applied the first time, reused the second), the overlay's mount options, and
// the release of the overlay when the container is deleted.
func TestExplainRunImage(t *testing.T) {
	app := filepath.Join(testImages(t), "img") + ":app"
	e := newEnv(t)
	r := e.berth("--explain", "run", "--image", app, "xi1")
	if r.code != 3 {
		t.Fatalf("run --image: exit %d, stderr %s", r.code, r.stderr)
	}
	layers := filepath.Join(e.root, ".images", "layers")
	narrated(t, "run --image", r.stderr, []string{"image.Open", "image.Prepare", "image.Store.AddLayers", "image.Store.addLayer",
		"image.mountOverlay", "libcontainer.startInit", "rootfs.pivotRoot", "libcontainer.execUser", "image.ReleaseBundle"},
		"OCI layout "+filepath.Dir(strings.TrimSuffix(app, ":app")), "tag app -> manifest sha256:",
		": not in the store (no "+layers+"/", "-o lowerdir="+layers+"/",
		",upperdir="+filepath.Join(e.root, ".images/containers/xi1/upper"), ",workdir=",
		"config.json from the image config: args [\"/bin/sh\" \"-c\" \"echo app; exit 3\"], cwd /data, uid 1000")
	r = e.berth("--explain", "run", "--image", app, "xi2")
	narrated(t, "second run --image", r.stderr, []string{"image.Store.AddLayers", "image.mountOverlay"}, "in the store, reused", "0 of ")
	if strings.Contains(r.stderr, "image.Store.addLayer") {
		t.Errorf("the second run applied a layer again:\n%s", r.stderr)
	}
}
