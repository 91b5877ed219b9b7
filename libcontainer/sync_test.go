package libcontainer

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func pipePair(t *testing.T) (*initPipe, *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
	t.Cleanup(func() { a.Close(); b.Close() })
	return newInitPipe(a), b
}

// The init pipe carries one JSON value a line, the bytes a json.Encoder writes, whichever
// way a message is encoded; what arrives reads as json.Unmarshal reads it, the C stage's
// lines included, and the end of the pipe reads as io.EOF, or io.ErrUnexpectedEOF within a
// line.
func TestInitPipeLines(t *testing.T) {
	p, other := pipePair(t)
	msgs := []any{syncMsg{Type: "go"}, &syncMsg{Type: "step", Step: "x", Msg: "<&>\u2028\xff", At: 5},
		initConfig{FifoFd: 3, ConsoleFd: -1, Setgroups: true}}
	var want bytes.Buffer
	enc := json.NewEncoder(&want)
	for _, m := range msgs {
		if err := p.send(m); err != nil {
			t.Fatal(err)
		}
		_ = enc.Encode(m)
	}
	got := make([]byte, want.Len())
	if _, err := io.ReadFull(other, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("sent\n%s\nwant\n%s", got, want.Bytes())
	}

	// The other way: the C stage's lines, berth's own, then an end within a line.
	in := "{\"type\":\"pid\",\"pid\":42}\n" + string(want.Bytes()) + "{\"type\":\"rea"
	go func() { _, _ = other.Write([]byte(in)); other.Close() }()
	var m syncMsg
	if err := p.recv(&m); err != nil || m != (syncMsg{Type: "pid", Pid: 42}) {
		t.Fatalf("recv: %+v, %v", m, err)
	}
	for i := 0; i < 2; i++ {
		var m syncMsg
		if err := p.recv(&m); err != nil || m.Type != []string{"go", "step"}[i] {
			t.Fatalf("recv %d: %+v, %v", i, m, err)
		}
		if i == 1 && m.Msg != "<&>\u2028\ufffd" {
			t.Errorf("step text %q", m.Msg)
		}
	}
	var cfg initConfig
	if err := p.recv(&cfg); err != nil || cfg.FifoFd != 3 || cfg.ConsoleFd != -1 || !cfg.Setgroups {
		t.Fatalf("recv initConfig: %+v, %v", cfg, err)
	}
	if err := p.recv(&m); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a cut message: %v, want io.ErrUnexpectedEOF", err)
	}
	if err := p.recv(&m); err != io.EOF {
		t.Errorf("the end: %v, want io.EOF", err)
	}
}
