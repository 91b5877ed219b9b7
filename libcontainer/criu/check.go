package criu

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"google.golang.org/protobuf/proto"
)

// MinVersion is the oldest criu berth drives (major*10000 + minor*100): 3.14, the first to
// freeze a cgroup v2 group, and older than any distribution ships today (Debian 12: 3.17).
const MinVersion = 31400

// Lookup resolves the criu binary (a name is searched in $PATH), with the clear error when
// there is none.
func Lookup(path string) (string, error) {
	if path == "" {
		path = "criu"
	}
	p, err := exec.LookPath(path)
	if err != nil {
		return "", notFound(path, err)
	}
	return p, nil
}

// Version asks criu for its version, as major*10000 + minor*100 + sublevel, and its text.
func Version(path string) (int, string, error) {
	t := rpc.CriuReqType_VERSION
	resp, err := Run(Call{Path: path, Req: &rpc.CriuReq{Type: &t}})
	if err != nil {
		return 0, "", err
	}
	v := resp.GetVersion()
	if v == nil {
		return 0, "", errors.New("criu answered the version request without a version")
	}
	n := int(v.GetMajorNumber())*10000 + int(v.GetMinorNumber())*100 + int(v.GetSublevel())
	s := fmt.Sprintf("%d.%d", v.GetMajorNumber(), v.GetMinorNumber())
	if v.GetSublevel() != 0 {
		s += fmt.Sprintf(".%d", v.GetSublevel())
	}
	return n, s, nil
}

// Check resolves criu, checks it is recent enough, and has it run its own check of the
// kernel (the CHECK request, `criu check`): a criu that cannot work here says so now, with
// its own words, not half-way through a dump. It returns the version's text.
func Check(path string) (string, error) {
	p, err := Lookup(path)
	if err != nil {
		return "", err
	}
	n, s, err := Version(p)
	if err != nil {
		return "", fmt.Errorf("asking criu (%s) for its version: %w", p, err)
	}
	if n < MinVersion {
		return s, fmt.Errorf("criu %s (%s) is too old: berth needs criu %d.%d or newer", s, p, MinVersion/10000, MinVersion/100%100)
	}
	dir, err := os.MkdirTemp("", "berth-criu-check-")
	if err != nil {
		return s, err
	}
	defer os.RemoveAll(dir)
	d, err := os.Open(dir)
	if err != nil {
		return s, err
	}
	defer d.Close()
	log := filepath.Join(dir, "check.log")
	t := rpc.CriuReqType_CHECK
	// Descriptor numbers in requests are ours: criu opens them through /proc/<our pid>/fd.
	fd := proto.Int32(int32(d.Fd()))
	req := &rpc.CriuReq{Type: &t, Opts: &rpc.CriuOpts{
		// criu wants an images directory on every request; the check writes nothing there.
		ImagesDirFd: fd, WorkDirFd: fd,
		LogFile: proto.String("check.log"), LogLevel: proto.Int32(2),
	}}
	if _, err := Run(Call{Path: p, Req: req, Log: log}); err != nil {
		// The log goes with the temporary directory: its errors go into the message.
		msg := strings.Join(LogErrors(log, 2), "; ")
		if msg == "" {
			msg = strings.TrimPrefix(err.Error(), "criu check failed: ")
		}
		return s, fmt.Errorf("criu %s (%s) fails its check of this kernel: %s", s, p, msg)
	}
	return s, nil
}
