package main

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/libcontainer"
)

// resourcesFromFile runs update's flag handling on `update --resources FILE`.
func resourcesFromFile(t *testing.T, path string) (*specs.LinuxResources, error) {
	set := flag.NewFlagSet("update", flag.ContinueOnError)
	for _, fl := range updateCommand.Flags {
		if err := fl.Apply(set); err != nil {
			t.Fatal(err)
		}
	}
	if err := set.Parse([]string{"--resources", path, "ctr"}); err != nil {
		t.Fatal(err)
	}
	return updateResources(cli.NewContext(cli.NewApp(), set, nil))
}

// FuzzUpdateResources: the JSON of `update --resources` (seeds: what runc's update.bats
// sends, containerd's CRI update), parsed as the CLI does and merged into a container's
// resources (those of ctr oci spec's shape). No panic, one-line errors, and every field the
// update sets is in the merged result.
func FuzzUpdateResources(f *testing.F) {
	paths, _ := filepath.Glob("testdata/resources/*.json")
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	logrus.SetOutput(os_devnull(f))
	dir := f.TempDir()
	file := filepath.Join(dir, "resources.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := resourcesFromFile(t, file)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\n\r") || !strings.HasPrefix(err.Error(), "--resources ") {
				t.Fatalf("error: %q", err)
			}
			return
		}
		limit, shares := int64(1<<30), uint64(1024)
		old := specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}, CPU: &specs.LinuxCPU{Shares: &shares, Cpus: "0"},
			Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}
		merged := libcontainer.MergeResources(old, r)
		if r.Memory != nil && r.Memory.Limit != nil && (merged.Memory == nil || *merged.Memory.Limit != *r.Memory.Limit) {
			t.Fatalf("memory.limit %d not merged", *r.Memory.Limit)
		}
		if r.CPU != nil && r.CPU.Cpus != "" && merged.CPU.Cpus != r.CPU.Cpus {
			t.Fatalf("cpu.cpus %q not merged", r.CPU.Cpus)
		}
		if r.Pids != nil && r.Pids.Limit != nil && (merged.Pids == nil || merged.Pids.Limit == nil || *merged.Pids.Limit != *r.Pids.Limit) {
			t.Fatalf("pids not merged")
		}
		for k, v := range r.Unified {
			if merged.Unified[k] != v {
				t.Fatalf("unified[%q] not merged", k)
			}
		}
		if len(r.Devices) > 0 && !reflect.DeepEqual(merged.Devices, r.Devices) {
			t.Fatalf("device rules not replaced")
		}
	})
}

func os_devnull(f *testing.F) *os.File {
	n, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { n.Close() })
	return n
}

// FuzzParseSize: the sizes of --memory, --memory-swap, --memory-reservation. What parses is
// -1 or a byte count that is not negative, and a plain number reads as itself.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"-1", "0", "1024", "512m", "1.5g", "2MiB", "1t", "8p", "12q", " 4 k "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\n\r") && !strings.ContainsAny(s, "\n\r") {
				t.Fatalf("error: %q", err)
			}
			return
		}
		if n < -1 {
			t.Fatalf("parseSize(%q) = %d", s, n)
		}
		if v, err := strconv.ParseInt(s, 10, 64); err == nil && v >= 0 && n != v {
			t.Fatalf("parseSize(%q) = %d", s, n)
		}
	})
}
