package cgroups

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestCPUList(t *testing.T) {
	dir := t.TempDir()
	for in, want := range map[string][]uint16{"0-2,4\n": {0, 1, 2, 4}, "3": {3}, "": nil, "2-1": nil} {
		os.WriteFile(filepath.Join(dir, "f"), []byte(in), 0o644)
		if got := cpuList(filepath.Join(dir, "f")); !reflect.DeepEqual(got, want) {
			t.Errorf("cpuList(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestBlkioKeepsEveryOp(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "blkio.throttle.io_service_bytes_recursive"),
		[]byte("8:0 Read 4096\n8:0 Write 0\n8:0 Sync 4096\n8:0 Async 0\n8:0 Discard 0\n8:0 Total 4096\nTotal 4096\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "blkio.throttle.io_serviced_recursive"), []byte("8:0 Read 1\nTotal 1\n"), 0o644)
	// An empty BFQ file: that group is skipped, as runc does.
	os.WriteFile(filepath.Join(dir, "blkio.bfq.io_serviced_recursive"), nil, 0o644)
	b := blkioStats(dir)
	if len(b.IoServiceBytesRecursive) != 6 || b.IoServiceBytesRecursive[5] != (BlkioEntry{8, 0, "Total", 4096}) {
		t.Errorf("ioServiceBytesRecursive = %+v", b.IoServiceBytesRecursive)
	}
	if len(b.IoServicedRecursive) != 1 {
		t.Errorf("ioServicedRecursive = %+v", b.IoServicedRecursive)
	}
}

func TestConvertMatchesRunc(t *testing.T) {
	cs := &Stats{}
	cs.Pids = PidsStats{Current: 3, Limit: math.MaxUint64}
	cs.Memory.Usage = MemoryEntry{Usage: 100, Limit: 1000}
	cs.Memory.Swap = MemoryEntry{Usage: 10, Limit: 500}
	cs.Hugetlb = map[string]HugetlbStats{"2MB": {Usage: 1, Max: 4096}}
	s := convertStats(cs)
	if s.Pids.Limit != 0 {
		t.Errorf("pids.max \"max\" gives limit %d, runc 0", s.Pids.Limit)
	}
	fixV2(s, cs)
	if s.Memory.Swap.Usage != 110 || s.Memory.Swap.Limit != 1500 || s.Hugetlb["2MB"].Max != 0 {
		t.Errorf("v2: swap %+v hugetlb %+v", s.Memory.Swap, s.Hugetlb)
	}
	data, _ := json.Marshal(convertStats(&Stats{}))
	for _, k := range []string{`"hugetlb":{}`, `"intel_rdt":{}`, `"network_interfaces":null`, `"cpuset":{`, `"kernelTCP":{`} {
		if !strings.Contains(string(data), k) {
			t.Errorf("no %s in %s", k, data)
		}
	}
}
