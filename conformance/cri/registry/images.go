package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

const (
	k8s     = "registry.k8s.io/"
	e2e     = k8s + "e2e-test-images/"
	crit    = "gcr.io/k8s-staging-cri-tools/"
	pathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// config is the part of an image's config that the images here set.
type config struct {
	User       string   `json:",omitempty"`
	Env        []string `json:",omitempty"`
	Entrypoint []string `json:",omitempty"`
	Cmd        []string `json:",omitempty"`
	WorkingDir string   `json:",omitempty"`
}

// image is one look-alike: the names it is served under, its layers and config.
type image struct {
	names  []string // registry.k8s.io/... or gcr.io/..., each with its tag
	layers []*layer
	config config
}

// The passwd and group of the busybox image (as busybox's own image has them), plus the user
// and group that test-image-predefined-group adds.
const (
	passwd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`
	group = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
staff:x:50:
users:x:100:
nogroup:x:65534:
`
	// pgrep and ipcs are not applets of Debian's busybox; critest runs `pgrep sleep` and
	// `ipcs -m` (it only looks for a segment id in the output).
	pgrep = `#!/bin/sh
# pgrep NAME: the pids whose command name is NAME (critest look-alike image)
for d in /proc/[0-9]*; do
	[ "$(cat "$d/comm" 2>/dev/null)" = "$1" ] && echo "${d#/proc/}"
done
exit 0
`
	ipcs = `#!/bin/sh
# ipcs -m: the System V shared memory segments, as /proc lists them (critest look-alike image)
echo "------ Shared Memory Segments --------"
tail -n +2 /proc/sysvipc/shm
`
)

// base is the busybox image's only layer: Debian's dynamically linked busybox with every
// applet hard-linked into place, the C library it needs from this machine, /etc/passwd and group.
func base(busyboxDir string) (*layer, error) {
	l := newLayer()
	bb := filepath.Join(busyboxDir, "bin/busybox")
	if err := l.hostFile("bin/busybox", 0o755, bb); err != nil {
		return nil, err
	}
	out, err := exec.Command(bb, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list-full: %w", bb, err)
	}
	for _, a := range strings.Fields(string(out)) {
		if a != "bin/busybox" {
			l.hardlink(a, "bin/busybox")
		}
	}
	libs := map[string]string{
		"lib/x86_64-linux-gnu/libc.so.6":            "/lib/x86_64-linux-gnu/libc.so.6",
		"lib/x86_64-linux-gnu/libresolv.so.2":       "/lib/x86_64-linux-gnu/libresolv.so.2",
		"lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": "/lib64/ld-linux-x86-64.so.2",
	}
	for in, host := range libs {
		if err := l.hostFile(in, 0o755, host); err != nil {
			return nil, err
		}
	}
	l.symlink("lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
	l.file("usr/bin/pgrep", 0o755, []byte(pgrep))
	l.file("usr/bin/ipcs", 0o755, []byte(ipcs))
	l.file("etc/passwd", 0o644, []byte(passwd))
	l.file("etc/group", 0o644, []byte(group))
	l.file("etc/shadow", 0o600, []byte(""))
	for _, d := range []string{"dev", "proc", "sys", "home", "var/www", "var/run", "var/spool/mail", "usr/sbin"} {
		l.dir(d, 0o755)
	}
	l.dir("root", 0o700)
	l.dir("tmp", 0o1777)
	return l, nil
}

// servers is the layer with imagebin under the names it answers to (../imagebin).
func servers(imagebin []byte) *layer {
	l := newLayer()
	l.file("usr/local/bin/imagebin", 0o755, imagebin)
	l.symlink("pause", "/usr/local/bin/imagebin")
	l.symlink("usr/sbin/nginx", "/usr/local/bin/imagebin")
	l.symlink("usr/local/bin/httpd-foreground", "/usr/local/bin/imagebin")
	l.dir("var/run", 0o755)
	return l
}

func web(root, listen string) *layer {
	l := newLayer()
	l.file(root+"/index.html", 0o644, []byte("<html><body>critest look-alike web server</body></html>\n"))
	if listen != "" {
		l.file("etc/nginx/listen", 0o644, []byte(listen+"\n"))
	}
	return l
}

// marker is one file named like the image, as critest's image-test Dockerfile adds.
func marker(name string) *layer {
	l := newLayer()
	l.file(name, 0o644, nil)
	return l
}

func images(busyboxDir string, imagebin []byte) ([]image, error) {
	bb, err := base(busyboxDir)
	if err != nil {
		return nil, err
	}
	srv := servers(imagebin)
	nnp := newLayer()
	nnp.file("usr/local/bin/nnp", 0o4755, imagebin) // set-user-ID root
	predef := newLayer()
	predef.file("etc/passwd", 0o644, []byte(passwd+"default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n"))
	predef.file("etc/group", 0o644, []byte(group+"default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n"))
	predef.dir("home/default-user", 0o755)

	env := []string{pathEnv}
	sh := config{Env: env, Cmd: []string{"sh"}}
	user := func(u string) config { c := sh; c.User = u; return c }
	imgs := []image{
		{[]string{k8s + "pause:3.6"}, []*layer{srv}, config{Env: env, Entrypoint: []string{"/pause"}}},
		{[]string{e2e + "busybox:1.29-2"}, []*layer{bb}, sh},
		{[]string{e2e + "nginx:1.14-2"}, []*layer{bb, srv, web("usr/share/nginx/html", ":80")},
			config{Env: env, Cmd: []string{"nginx", "-g", "daemon off;"}}},
		// With the host's network: only on the loopback address (critest reaches it through
		// the port forward, which dials localhost in the pod's network namespace).
		{[]string{crit + "hostnet-nginx-amd64:latest"}, []*layer{bb, srv, web("usr/share/nginx/html", "127.0.0.1:12003")},
			config{Env: env, Cmd: []string{"nginx", "-g", "daemon off;"}}},
		{[]string{e2e + "httpd:2.4.39-4"}, []*layer{bb, srv, web("usr/local/apache2/htdocs", "")},
			config{Env: env, Cmd: []string{"httpd-foreground"}, WorkingDir: "/usr/local/apache2"}},
		{[]string{e2e + "nonewprivs:1.3"}, []*layer{bb, nnp}, config{Env: env, Cmd: []string{"/usr/local/bin/nnp"}}},
		{[]string{crit + "test-image-user-uid:latest"}, []*layer{bb}, user("1002")},
		{[]string{crit + "test-image-user-username:latest"}, []*layer{bb}, user("www-data")},
		{[]string{crit + "test-image-user-uid-group:latest"}, []*layer{bb}, user("1003:1004")},
		{[]string{crit + "test-image-user-username-group:latest"}, []*layer{bb}, user("www-data:1004")},
		{[]string{crit + "test-image-predefined-group:latest"}, []*layer{bb, predef}, user("1000")},
		{[]string{crit + "test-image-tags:1", crit + "test-image-tags:2", crit + "test-image-tags:3"},
			[]*layer{bb, marker("same-image")}, sh},
	}
	for _, n := range []string{"test-image-1", "test-image-2", "test-image-3", "test-image-latest"} {
		imgs = append(imgs, image{[]string{crit + n + ":latest"}, []*layer{bb, marker(n)}, sh})
	}
	for _, t := range []string{"test", "all"} {
		imgs = append(imgs, image{[]string{crit + "test-image-tag:" + t}, []*layer{bb, marker(t)}, sh})
	}
	return imgs, nil
}

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// repoTag turns registry.k8s.io/e2e-test-images/busybox:1.29-2 into the name the mirror is
// asked for: e2e-test-images/busybox:1.29-2.
func repoTag(name string) string {
	return name[strings.Index(name, "/")+1:]
}

func build(busyboxDir, imagebinPath, out string) error {
	bin, err := os.ReadFile(imagebinPath)
	if err != nil {
		return err
	}
	imgs, err := images(busyboxDir, bin)
	if err != nil {
		return err
	}
	blobs := filepath.Join(out, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return err
	}
	put := func(b []byte) (string, error) {
		d := digestOf(b)
		p := filepath.Join(blobs, strings.TrimPrefix(d, "sha256:"))
		if _, err := os.Stat(p); err == nil {
			return d, nil
		}
		return d, os.WriteFile(p, b, 0o644)
	}
	done := map[*layer]*blob{}
	tags := map[string]string{}
	for _, img := range imgs {
		var layers []descriptor
		var diffIDs []string
		for _, l := range img.layers {
			b := done[l]
			if b == nil {
				if b, err = l.blob(); err != nil {
					return err
				}
				if _, err := put(b.content); err != nil {
					return err
				}
				done[l] = b
			}
			layers = append(layers, descriptor{b.mediaType, b.digest, b.size})
			diffIDs = append(diffIDs, b.diffID)
		}
		cfg, err := json.Marshal(map[string]any{
			"created":      epoch.Format("2006-01-02T15:04:05Z"),
			"architecture": "amd64",
			"os":           "linux",
			"config":       img.config,
			"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
		})
		if err != nil {
			return err
		}
		cfgDigest, err := put(cfg)
		if err != nil {
			return err
		}
		man, err := json.Marshal(map[string]any{
			"schemaVersion": 2,
			"mediaType":     "application/vnd.oci.image.manifest.v1+json",
			"config":        descriptor{"application/vnd.oci.image.config.v1+json", cfgDigest, int64(len(cfg))},
			"layers":        layers,
		})
		if err != nil {
			return err
		}
		manDigest, err := put(man)
		if err != nil {
			return err
		}
		for _, n := range img.names {
			tags[repoTag(n)] = manDigest
		}
	}
	names := make([]string, 0, len(tags))
	for n := range tags {
		names = append(names, n)
	}
	sort.Strings(names)
	b, err := json.MarshalIndent(tags, "", "  ")
	if err != nil {
		return err
	}
	fmt.Printf("%d image names, %d distinct layers\n", len(names), len(done))
	return os.WriteFile(filepath.Join(out, "tags.json"), append(b, '\n'), 0o644)
}
