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
