package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// checkString runs a page given as text, unattended, without berth.
func checkString(t *testing.T, page string) bool {
	t.Helper()
	steps, err := parsePage(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	return checkPage("test.md", steps, "", false)
}

func TestCheckPage(t *testing.T) {
	out := t.TempDir()
	pidFile := filepath.Join(out, "pid")
	cleaned := filepath.Join(out, "cleaned")
	for _, c := range []struct {
		name string
		page string
		ok   bool
	}{
		{"pass, state carried between steps", "```sh\nmkdir d && cd d\nX=5\n```\n```sh\necho \"in $(basename $PWD) x=$X\"\n```\n```text\nin d x=5\n```\n", true},
		{"a command fails mid-step", "```sh\nfalse\necho never\n```\n", false},
		{"a failure meant by the page", "```sh\nfalse || echo \"exit status $?\"\n```\n```text\nexit status 1\n```\n", true},
		{"output does not match", "```sh\necho hello\n```\n```text\ngoodbye\n```\n", false},
		{"a failing pipeline", "```sh\nfalse | cat\n```\n", false},
		{"a failure inside a function", "```sh\nf() { false; echo inside; }\nf\necho after\n```\n```text\nafter\n```\n", false},
		{"timeout", "```sh timeout=1\nsleep 30\n```\n", false},
		{"after a failure: cleanup runs, background processes are killed",
			"```sh\nsleep 1000 &\necho $! > " + pidFile + "\n```\n```sh\nfalse\n```\n```sh cleanup\ntouch " + cleaned + "\n```\n", false},
	} {
		if got := checkString(t, c.page); got != c.ok {
			t.Errorf("%s: passed %v, want %v", c.name, got, c.ok)
		}
	}
	if _, err := os.Stat(cleaned); err != nil {
		t.Errorf("the cleanup step did not run after the failure: %v", err)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if pid <= 0 {
		t.Fatalf("pid file: %q", data)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		if stat, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); !strings.Contains(string(stat), ") Z") {
			t.Errorf("the background sleep %d outlived its page", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
