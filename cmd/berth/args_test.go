package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestReorderArgs(t *testing.T) {
	app := newApp()
	for _, c := range []struct{ in, want string }{
		// runc's CLI reads flags after the id: they move in front, with their values.
		{"berth update ID --pids-limit 10", "berth update --pids-limit 10 ID"},
		{"berth --root /r --log l update ID --cpu-period=100 --memory 1m", "berth --root /r --log l update --cpu-period=100 --memory 1m ID"},
		{"berth --debug kill ID KILL --all", "berth --debug kill --all ID KILL"},
		{"berth delete ID -f", "berth delete -f ID"},
		{"berth run ID -d --bundle b", "berth run -d --bundle b ID"},
		// A value may start with "-"; nothing after "--" moves.
		{"berth update ID --cpu-quota -1", "berth update --cpu-quota -1 ID"},
		{"berth kill -- ID -9", "berth kill -- ID -9"},
		// The program's command line after the id stays as it is.
		{"berth exec ID ls -la", "berth exec ID ls -la"},
		{"berth exec -t ID sh -c x", "berth exec -t ID sh -c x"},
		{"berth ps ID -o pid", "berth ps ID -o pid"},
		{"berth run --image img ID sh -c x", "berth run --image img ID sh -c x"},
		{"berth create --image=img ID -- ls -l", "berth create --image=img ID -- ls -l"},
		{"berth image unpack -x a b", "berth image unpack -x a b"},
		// No command: nothing to do.
		{"berth --version", "berth --version"},
		{"berth --root /r", "berth --root /r"},
	} {
		got := reorderArgs(app, strings.Fields(c.in))
		if want := strings.Fields(c.want); !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", c.in, got, want)
		}
	}
}

func TestExplainHTMLArgs(t *testing.T) {
	app := newApp()
	for in, want := range map[string]string{
		"berth --explain=html /tmp/p.html run -b x c":               "berth --explain-html=/tmp/p.html run -b x c",
		"berth --root /r --explain=html p.html --log l create c":    "berth --root /r --explain-html=p.html --log l create c",
		"berth --explain run c":                                     "berth --explain run c",
		"berth run --explain=html c":                                "berth run --explain=html c", // not a global flag here
		"berth --log-format json -explain=html f.html start c":      "berth --log-format json --explain-html=f.html start c",
		"berth --root --explain=html --explain=html f.html start c": "berth --root --explain=html --explain-html=f.html start c",
	} {
		got, err := explainHTMLArgs(app, strings.Fields(in))
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("%s: %q %v, want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"berth --explain=html", "berth --explain=html --root x run c"} {
		if _, err := explainHTMLArgs(app, strings.Fields(in)); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
	if got := withoutPageFlag(strings.Fields("--root r --explain=html f run --explain-html=g -b x c")); strings.Join(got, " ") != "--root r run -b x c" {
		t.Errorf("title: %q", got)
	}
}
