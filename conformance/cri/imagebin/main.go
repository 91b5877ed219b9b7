// Command imagebin is the one program inside critest's look-alike images (see ../README.md).
// It is installed once per image and picks its part from the name it was started as:
//
//	pause              the pod sandbox's pause: waits for SIGINT/SIGTERM, reaps children
//	nginx              stands in for nginx: pid file, "nginx: master process" in its cmdline,
//	                   serves /usr/share/nginx/html on the address in /etc/nginx/listen
//	httpd-foreground   stands in for Apache httpd: says "httpd" in its log, serves on :80
//	nnp                installed set-user-ID root: prints "Effective uid: N" (nonewprivs image)
//
// It must be static (CGO_ENABLED=0): the pause image holds nothing else.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// nginxTitle is what real nginx shows as its master's command line; critest greps
// /proc/1/cmdline for "master process".
const nginxTitle = "nginx: master process nginx -g daemon off;"

func main() {
	name := filepath.Base(os.Args[0])
	if strings.HasPrefix(os.Args[0], "nginx: ") {
		name = "nginx-master"
	}
	var err error
	switch name {
	case "pause":
		pause()
	case "nginx":
		// Re-exec under the same path (so that comm stays "nginx" for pidof) with the
		// title nginx gives its master process as argv[0].
		err = syscall.Exec("/usr/sbin/nginx", []string{nginxTitle}, os.Environ())
	case "nginx-master":
		err = nginx()
	case "httpd-foreground":
		err = httpd()
	case "nnp":
		fmt.Printf("Effective uid: %d\n", os.Geteuid())
	default:
		err = fmt.Errorf("started as %q: want pause, nginx, httpd-foreground or nnp", name)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// pause waits for SIGINT or SIGTERM and reaps whatever children it is given (it is pid 1 of
// a pod's shared pid namespace).
func pause() {
	sig := make(chan os.Signal, 8)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sig {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}

// exitOn ends the process on the signals a container is stopped with.
func exitOn() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGWINCH)
	go func() {
		<-sig
		os.Exit(0)
	}()
}

func serve(addr, root string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return http.Serve(ln, http.FileServer(http.Dir(root)))
}

func nginx() error {
	exitOn()
	b, err := os.ReadFile("/etc/nginx/listen")
	if err != nil {
		return err
	}
	pid := strconv.Itoa(os.Getpid()) + "\n"
	if err := os.WriteFile("/var/run/nginx.pid", []byte(pid), 0o644); err != nil {
		return err
	}
	return serve(strings.TrimSpace(string(b)), "/usr/share/nginx/html")
}

func httpd() error {
	exitOn()
	fmt.Fprintln(os.Stderr, "httpd: serving /usr/local/apache2/htdocs on :80")
	return serve(":80", "/usr/local/apache2/htdocs")
}
