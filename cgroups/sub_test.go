package cgroups

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseSubPaths(t *testing.T) {
	for _, c := range []struct {
		args []string
		want map[string]string
		err  string
	}{
		{nil, nil, ""},
		{[]string{"sub"}, map[string]string{"": "sub"}, ""},
		{[]string{"memory:a", "cpu,cpuacct:b"}, map[string]string{"memory": "a", "cpu": "b", "cpuacct": "b"}, ""},
		{[]string{"memory:a", "b"}, nil, "invalid --cgroup argument: b (missing <controller>: prefix)"},
		{[]string{"a:b:c"}, nil, "invalid --cgroup argument: a:b:c"},
	} {
		got, err := ParseSubPaths(c.args)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.args, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %v %v, want %v", c.args, got, err, c.want)
		}
	}
}

func TestSubDir(t *testing.T) {
	for _, c := range []struct{ add, want string }{
		{"/", "/g"}, {"x", "/g/x"}, {"/x/y", "/g/x/y"}, {"..", ""}, {"x/../..", ""}, {"../gg", ""},
	} {
		got, err := subDir("/g", c.add)
		if (err != nil) != (c.want == "") || got != c.want {
			t.Errorf("subDir(/g, %q) = %q, %v", c.add, got, err)
		}
	}
}
