package main

import (
	"strings"
	"testing"
)

func TestParsePage(t *testing.T) {
	page := "# Lab\n\nText one.\n\n```sh\necho hi\n```\n\nIt prints:\n\n```text\nhi\n```\n\n" +
		"```sh norun\nrm -rf /\n```\n\n```text\nnot checked\n```\n\n```json\n{}\n```\n\n" +
		"```sh cleanup timeout=5\necho bye\n```\n"
	steps, err := parsePage(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 3 {
		t.Fatalf("want 3 steps, got %d", len(steps))
	}
	if steps[0].script != "echo hi\n" || len(steps[0].want) != 1 || steps[0].want[0] != "hi" || !strings.Contains(steps[0].prose, "Text one.") {
		t.Errorf("step 1: %+v", steps[0])
	}
	if !steps[1].norun {
		t.Errorf("step 2: %+v", steps[1])
	}
	if !steps[2].cleanup || steps[2].timeout != 5 || steps[2].want != nil {
		t.Errorf("step 3: %+v", steps[2])
	}
	for _, bad := range []string{"```sh\nx\n", "```text\nx\n```\n", "```sh later\nx\n```\n", "```sh\nx\n```\n```json\n{}\n```\n```text\na\n```\n", "```sh\nx\n```\n```text\na\n```\n```text\nb\n```\n"} {
		if _, err := parsePage(strings.NewReader(bad)); err == nil {
			t.Errorf("no error for %q", bad)
		}
	}
}

func TestMatch(t *testing.T) {
	out := "first line\nPID   USER     TIME  COMMAND\n    1 root      0:00 sh -c sleep 100\nlast\n"
	for _, c := range []struct {
		want []string
		miss string
	}{
		{[]string{"first", "last"}, ""},
		{[]string{"PID USER TIME COMMAND", "1 root ... sleep 100"}, ""},
		{[]string{"last", "first"}, "first"},     // order counts
		{[]string{"sh ... root"}, "sh ... root"}, // so does order inside a line
		{[]string{"nowhere"}, "nowhere"},
	} {
		if got := match(c.want, out); got != c.miss {
			t.Errorf("match(%q): missing %q, want %q", c.want, got, c.miss)
		}
	}
	if w := wantLines("a\n\n...\n  b   c \n"); len(w) != 2 || w[1] != "b c" {
		t.Errorf("wantLines: %q", w)
	}
}
