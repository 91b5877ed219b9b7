package libcontainer

import specs "github.com/opencontainers/runtime-spec/specs-go"

// allowedDevices are the device cgroup rules runc adds after the config's own: the default
// /dev nodes must stay usable (and creatable, "m") whatever the config denies before them.
func allowedDevices() []specs.LinuxDeviceCgroup {
	i := func(v int64) *int64 { return &v }
	return []specs.LinuxDeviceCgroup{
		{Allow: true, Type: "c", Access: "m"}, {Allow: true, Type: "b", Access: "m"},
		{Allow: true, Type: "c", Major: i(1), Minor: i(3), Access: "rwm"},    // null
		{Allow: true, Type: "c", Major: i(1), Minor: i(5), Access: "rwm"},    // zero
		{Allow: true, Type: "c", Major: i(1), Minor: i(7), Access: "rwm"},    // full
		{Allow: true, Type: "c", Major: i(1), Minor: i(8), Access: "rwm"},    // random
		{Allow: true, Type: "c", Major: i(1), Minor: i(9), Access: "rwm"},    // urandom
		{Allow: true, Type: "c", Major: i(5), Minor: i(0), Access: "rwm"},    // tty
		{Allow: true, Type: "c", Major: i(5), Minor: i(2), Access: "rwm"},    // ptmx
		{Allow: true, Type: "c", Major: i(136), Access: "rwm"},               // pts/*
		{Allow: true, Type: "c", Major: i(10), Minor: i(200), Access: "rwm"}, // net/tun
	}
}

// cgroupResources is linux.resources as the cgroup gets it: the device rules extended with the
// default devices. A linux.devices entry gets no rule of its own (as with runc): the node is
// made, but only linux.resources.devices decides whether the container may open it.
func cgroupResources(spec *specs.Spec) *specs.LinuxResources {
	var r specs.LinuxResources
	if spec.Linux.Resources != nil {
		r = *spec.Linux.Resources
	}
	rules := append([]specs.LinuxDeviceCgroup{}, r.Devices...)
	if len(rules) == 0 {
		// No rules at all: default-deny, as runc does.
		rules = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	}
	rules = append(rules, allowedDevices()...)
	r.Devices = rules
	return &r
}
