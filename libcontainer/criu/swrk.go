// Package criu drives CRIU (checkpoint/restore in user space) through its RPC interface: a
// `criu swrk` process per request, spoken to over a SOCK_SEQPACKET socket pair with the
// protobuf messages of github.com/checkpoint-restore/go-criu's rpc package. Nothing here
// parses criu's command-line output.
package criu

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// Call is one request to a `criu swrk` process, with what it needs around it.
type Call struct {
	Path string // the criu binary
	Req  *rpc.CriuReq
	// Stdio become criu's descriptors 0-2 (nil: /dev/null). On restore they are what a
	// restored process's stdio pipes are replaced with (inherit_fd).
	Stdio [3]*os.File
	// Extra are criu's descriptors 4, 5, ... (3 is the RPC socket).
	Extra []*os.File
	// Started runs once criu exists, before the request is sent (restore puts criu into the
	// container's cgroup here, so that what it restores is born there).
	Started func(pid int) error
	// Notify is called for each notification criu sends (the "scripts": setup-namespaces,
	// post-restore, orphan-pts-master...), with the descriptors that came with it. An error
	// fails the request. The descriptors are the callee's to close.
	Notify func(script string, pid int32, fds []int) error
	// Log is criu's log file for this request, named in errors.
	Log string
}

// Run starts `criu swrk 3`, sends the request, answers its notifications and returns its
// final response. The criu process is always waited for.
func Run(c Call) (*rpc.CriuResp, error) {
	fds, err := unix.Socketpair(unix.AF_LOCAL, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	client := os.NewFile(uintptr(fds[0]), "criu-client")
	server := os.NewFile(uintptr(fds[1]), "criu-server")
	defer client.Close()
	cmd := exec.Command(c.Path, "swrk", "3")
	if c.Stdio[0] != nil {
		cmd.Stdin = c.Stdio[0]
	}
	if c.Stdio[1] != nil {
		cmd.Stdout = c.Stdio[1]
	}
	if c.Stdio[2] != nil {
		cmd.Stderr = c.Stdio[2]
	}
	cmd.ExtraFiles = append([]*os.File{server}, c.Extra...)
	if err := cmd.Start(); err != nil {
		server.Close()
		return nil, notFound(c.Path, err)
	}
	// Our copy closed: if criu dies, reads on the client end see end of file, not a hang.
	server.Close()
	resp, err := converse(c, cmd.Process.Pid, client)
	// End of file on criu's side: after a failure it undoes what it did (thaws a dumped
	// container, kills what it restored) and exits; killing it instead could leave a
	// container frozen.
	_ = unix.Shutdown(int(client.Fd()), unix.SHUT_WR)
	st, werr := cmd.Process.Wait()
	if err != nil {
		return resp, err
	}
	// After a pre-dump criu waits for a next request that never comes: its exit status
	// then says nothing.
	if werr == nil && !st.Success() && c.Req.GetType() != rpc.CriuReqType_PRE_DUMP {
		return resp, fmt.Errorf("criu %s: criu exited with %s%s", typeName(c.Req), st, logHint(c.Log))
	}
	return resp, nil
}

func converse(c Call, pid int, sock *os.File) (*rpc.CriuResp, error) {
	if c.Started != nil {
		if err := c.Started(pid); err != nil {
			return nil, err
		}
	}
	data, err := proto.Marshal(c.Req)
	if err != nil {
		return nil, err
	}
	if _, err := sock.Write(data); err != nil {
		return nil, fmt.Errorf("criu %s: sending the request: %w", typeName(c.Req), err)
	}
	buf := make([]byte, 64*1024)
	oob := make([]byte, unix.CmsgSpace(16*4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err != nil {
			return nil, fmt.Errorf("criu %s: reading its answer: %w", typeName(c.Req), err)
		}
		fds := rights(oob[:oobn])
		if n == 0 {
			closeAll(fds)
			return nil, fmt.Errorf("criu %s: criu exited without an answer%s", typeName(c.Req), logHint(c.Log))
		}
		resp := &rpc.CriuResp{}
		if err := proto.Unmarshal(buf[:n], resp); err != nil {
			closeAll(fds)
			return nil, fmt.Errorf("criu %s: bad answer: %w", typeName(c.Req), err)
		}
		if !resp.GetSuccess() {
			closeAll(fds)
			return resp, Failure(c.Req, resp, c.Log)
		}
		if resp.GetType() != rpc.CriuReqType_NOTIFY {
			closeAll(fds)
			return resp, nil
		}
		script := resp.GetNotify().GetScript()
		if c.Notify != nil {
			err = c.Notify(script, resp.GetNotify().GetPid(), fds)
		} else {
			closeAll(fds)
		}
		if err != nil {
			return resp, fmt.Errorf("criu %s, at %s: %w", typeName(c.Req), script, err)
		}
		t := rpc.CriuReqType_NOTIFY
		ack, _ := proto.Marshal(&rpc.CriuReq{Type: &t, NotifySuccess: proto.Bool(true)})
		if _, err := sock.Write(ack); err != nil {
			return nil, fmt.Errorf("criu %s: answering %s: %w", typeName(c.Req), script, err)
		}
	}
}

// Failure is the error for a request criu refused: its own message (cr_errmsg, or the last
// errors of its log), then where the whole log is.
func Failure(req *rpc.CriuReq, resp *rpc.CriuResp, log string) error {
	msg := strings.TrimSpace(resp.GetCrErrmsg())
	if msg == "" {
		msg = strings.Join(LogErrors(log, 2), "; ")
	}
	if msg == "" {
		msg = fmt.Sprintf("errno %d", resp.GetCrErrno())
	}
	return fmt.Errorf("criu %s failed: %s%s", typeName(req), msg, logHint(log))
}

// LogErrors returns the first max "Error (file:line): message" lines of a criu log, message
// only: the first is the cause, what follows its consequences.
func LogErrors(log string, max int) []string {
	if log == "" {
		return nil
	}
	f, err := os.Open(log)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		line := s.Text()
		i := strings.Index(line, "Error (")
		if i < 0 {
			continue
		}
		msg := line[i:]
		if j := strings.Index(msg, "): "); j > 0 {
			msg = msg[j+3:]
		}
		out = append(out, strings.TrimSpace(msg))
		if len(out) == max {
			break
		}
	}
	return out
}

func logHint(log string) string {
	if log == "" {
		return ""
	}
	if _, err := os.Stat(log); err != nil {
		return ""
	}
	return " (log: " + log + ")"
}

func typeName(req *rpc.CriuReq) string {
	return strings.ToLower(strings.ReplaceAll(req.GetType().String(), "_", "-"))
}

func rights(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for i := range msgs {
		if f, err := unix.ParseUnixRights(&msgs[i]); err == nil {
			fds = append(fds, f...)
		}
	}
	return fds
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// ErrNotInstalled is wrapped by every error that means there is no criu to run.
var ErrNotInstalled = errors.New("criu: executable file not found in $PATH")

func notFound(path string, err error) error {
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		need := fmt.Sprintf("checkpoint/restore needs criu (%d.%d or newer)", MinVersion/10000, MinVersion/100%100)
		if filepath.Base(path) == path {
			return fmt.Errorf("%s: %w", need, ErrNotInstalled)
		}
		return fmt.Errorf("%s: %s: %w", need, path, os.ErrNotExist)
	}
	return fmt.Errorf("starting criu: %w", err)
}
