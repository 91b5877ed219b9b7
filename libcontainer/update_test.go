package libcontainer

import (
	"encoding/json"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestMergeResources(t *testing.T) {
	var old, add specs.LinuxResources
	must := func(s string, r *specs.LinuxResources) {
		if err := json.Unmarshal([]byte(s), r); err != nil {
			t.Fatal(err)
		}
	}
	must(`{"devices": [{"allow": false, "access": "rwm"}],
		"memory": {"limit": 100, "swap": 200},
		"cpu": {"shares": 512, "quota": 1000, "period": 10000, "cpus": "0-1"},
		"pids": {"limit": 10},
		"blockIO": {"weight": 100, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 5}]},
		"hugepageLimits": [{"pageSize": "2MB", "limit": 4}],
		"unified": {"memory.high": "50", "io.latency": "x"}}`, &old)
	must(`{"memory": {"limit": 150},
		"cpu": {"quota": 2000, "mems": "0"},
		"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 7}, {"major": 8, "minor": 16, "rate": 9}]},
		"hugepageLimits": [{"pageSize": "2MB", "limit": 8}, {"pageSize": "1GB", "limit": 1}],
		"unified": {"memory.high": "60"}}`, &add)
	oldJSON, _ := json.Marshal(old)
	got := MergeResources(old, &add)
	want := `{"devices":[{"allow":false,"access":"rwm"}],` +
		`"memory":{"limit":150,"swap":200},` +
		`"cpu":{"shares":512,"quota":2000,"period":10000,"cpus":"0-1","mems":"0"},` +
		`"pids":{"limit":10},` +
		`"blockIO":{"weight":100,"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":7},{"major":8,"minor":16,"rate":9}]},` +
		`"hugepageLimits":[{"pageSize":"2MB","limit":8},{"pageSize":"1GB","limit":1}],` +
		`"unified":{"io.latency":"x","memory.high":"60"}}`
	if data, _ := json.Marshal(got); string(data) != want {
		t.Errorf("merged:\n%s\nwant:\n%s", data, want)
	}
	// The old resources are not changed in place.
	if data, _ := json.Marshal(old); string(data) != string(oldJSON) {
		t.Errorf("old changed:\n%s\nwas:\n%s", data, oldJSON)
	}
	// Devices given replace the old rules.
	got = MergeResources(old, &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Access: "r"}}})
	if len(got.Devices) != 1 || !got.Devices[0].Allow {
		t.Errorf("devices: %+v", got.Devices)
	}
}

// Unlimited memory without a swap in the same update lifts the recorded memory+swap limit.
func TestLiftSwap(t *testing.T) {
	i := func(v int64) *int64 { return &v }
	for _, c := range []struct {
		oldSwap, limit, swap *int64
		want                 *int64
	}{
		{i(200), i(-1), nil, i(-1)},
		{i(200), i(-1), i(300), i(300)},
		{i(200), i(100), nil, i(200)},
		{nil, i(-1), nil, nil},
	} {
		old := specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i(50), Swap: c.oldSwap}}
		r := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: c.limit, Swap: c.swap}}
		m := MergeResources(old, r)
		liftSwap(&m, r)
		if (m.Memory.Swap == nil) != (c.want == nil) || (c.want != nil && *m.Memory.Swap != *c.want) {
			t.Errorf("old swap %v, update limit %v swap %v: swap %v", c.oldSwap, *c.limit, c.swap, m.Memory.Swap)
		}
	}
}
