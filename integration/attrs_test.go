package integration

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// personality, scheduler, ioPriority and memoryPolicy reach the container's process, and
// exec gets the process-level ones of its own process.
func TestProcessAttributes(t *testing.T) {
	e := newEnv(t, "sh", "-c", "uname -m; ionice; awk '{print $19}' /proc/self/stat; grep -m1 -o '^policy *: *[0-9]*' /proc/self/sched | tr -d ' '; head -1 /proc/self/numa_maps | awk '{print $2}'")
	e.spec.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32}
	e.spec.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedBatch, Nice: 5}
	e.spec.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 6}
	e.spec.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: specs.MpolBind, Nodes: "0"}
	r := e.run("at-1")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	l := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(l) != 5 || l[0] != "i686" || !strings.Contains(l[1], "best-effort: prio 6") || l[2] != "5" || l[3] != "policy:3" || l[4] != "bind:0" {
		t.Errorf("inside: %q; want i686, best-effort prio 6, nice 5, policy 3 (batch), bind:0", l)
	}
}

// What the host cannot do, or berth does not, is refused naming the field.
func TestUnsupportedAttributesRefused(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(*specs.Spec)
		want  string
	}{
		{"apparmor without AppArmor", func(s *specs.Spec) { s.Process.ApparmorProfile = "docker-default" }, "process.apparmorProfile"},
		{"selinux label without SELinux", func(s *specs.Spec) { s.Process.SelinuxLabel = "system_u:system_r:container_t:s0" }, "process.selinuxLabel"},
		{"mount label without SELinux", func(s *specs.Spec) { s.Linux.MountLabel = "system_u:object_r:container_file_t:s0" }, "linux.mountLabel"},
		{"intel rdt", func(s *specs.Spec) { s.Linux.IntelRdt = &specs.LinuxIntelRdt{ClosID: "x"} }, "linux.intelRdt"},
		{"bad scheduler", func(s *specs.Spec) { s.Process.Scheduler = &specs.Scheduler{Policy: "SCHED_NOPE"} }, "process.scheduler.policy"},
		{"bad ioprio", func(s *specs.Spec) {
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 9}
		}, "process.ioPriority.priority"},
		{"bad nodes", func(s *specs.Spec) {
			s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: specs.MpolBind, Nodes: "1-0"}
		}, "linux.memoryPolicy.nodes"},
		{"bad personality", func(s *specs.Spec) { s.Linux.Personality = &specs.LinuxPersonality{Domain: "WINDOWS"} }, "linux.personality.domain"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, "true")
			c.setup(e.spec)
			r := e.run("at-bad")
			if r.code == 0 || !strings.Contains(r.stderr, c.want) {
				t.Errorf("exit %d, stderr %q, want %q", r.code, r.stderr, c.want)
			}
			e.assertGone("at-bad")
		})
	}
}
