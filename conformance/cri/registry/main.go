// Command registry builds critest's look-alike images and serves them read-only over plain
// HTTP on 127.0.0.1, as the distribution API that containerd pulls from (see ../README.md).
//
//	registry build -busybox DIR -imagebin FILE -out DIR
//	registry serve -dir DIR -addr 127.0.0.1:0 -port-file FILE
//
// build writes every image of the images table into DIR: blobs/sha256/<hex> (layers, configs,
// manifests) and tags.json ({"repo:tag": "sha256:..."}). Layers are written deterministically
// (fixed times, sorted entries, no gzip header time), so the same inputs give the same digests.
// serve answers GET and HEAD on /v2/, /v2/<repo>/manifests/<tag|digest> and
// /v2/<repo>/blobs/<digest>; nothing else (no pushes).
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: registry build|serve [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "build":
		fs := flag.NewFlagSet("build", flag.ExitOnError)
		busybox := fs.String("busybox", "", "directory holding Debian's package busybox unpacked (dpkg -x)")
		imagebin := fs.String("imagebin", "", "the static imagebin program")
		out := fs.String("out", "", "output directory")
		_ = fs.Parse(os.Args[2:])
		err = build(*busybox, *imagebin, *out)
	case "serve":
		fs := flag.NewFlagSet("serve", flag.ExitOnError)
		dir := fs.String("dir", "", "directory written by build")
		addr := fs.String("addr", "127.0.0.1:0", "address to listen on (keep it on 127.0.0.1)")
		portFile := fs.String("port-file", "", "write the port listened on to this file")
		_ = fs.Parse(os.Args[2:])
		err = serve(*dir, *addr, *portFile)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "registry:", err)
		os.Exit(1)
	}
}
