package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

type registry struct {
	dir  string
	tags map[string]string // repo:tag -> manifest digest
}

func serve(dir, addr, portFile string) error {
	r := &registry{dir: dir}
	b, err := os.ReadFile(filepath.Join(dir, "tags.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &r.tags); err != nil {
		return fmt.Errorf("tags.json: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if portFile != "" {
		port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		if err := os.WriteFile(portFile, []byte(port+"\n"), 0o644); err != nil {
			return err
		}
	}
	return http.Serve(ln, r)
}

func apiError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q}]}`+"\n", code)
}

func (r *registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		apiError(w, http.StatusMethodNotAllowed, "UNSUPPORTED")
		return
	}
	p := req.URL.Path
	if p == "/v2/" || p == "/v2" {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, "{}")
		return
	}
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		apiError(w, http.StatusNotFound, "NAME_UNKNOWN")
		return
	}
	if i := strings.LastIndex(rest, "/manifests/"); i > 0 {
		repo, ref := rest[:i], rest[i+len("/manifests/"):]
		d := ref
		if !digestRE.MatchString(ref) {
			if d, ok = r.tags[repo+":"+ref]; !ok {
				apiError(w, http.StatusNotFound, "MANIFEST_UNKNOWN")
				return
			}
		}
		r.blob(w, req, d, true)
		return
	}
	if i := strings.LastIndex(rest, "/blobs/"); i > 0 {
		r.blob(w, req, rest[i+len("/blobs/"):], false)
		return
	}
	apiError(w, http.StatusNotFound, "NAME_UNKNOWN")
}

func (r *registry) blob(w http.ResponseWriter, req *http.Request, d string, manifest bool) {
	unknown := "BLOB_UNKNOWN"
	if manifest {
		unknown = "MANIFEST_UNKNOWN"
	}
	if !digestRE.MatchString(d) {
		apiError(w, http.StatusNotFound, unknown)
		return
	}
	b, err := os.ReadFile(filepath.Join(r.dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")))
	if err != nil {
		apiError(w, http.StatusNotFound, unknown)
		return
	}
	ctype := "application/octet-stream"
	if manifest {
		var m struct {
			MediaType string `json:"mediaType"`
		}
		if json.Unmarshal(b, &m) != nil || m.MediaType == "" {
			apiError(w, http.StatusNotFound, unknown)
			return
		}
		ctype = m.MediaType
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Header().Set("Docker-Content-Digest", d)
	if req.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}
