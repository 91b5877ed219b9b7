// Package guest holds the cgroup v2 checks that run inside the VM of package vm, against real
// containers made by the berth binary given in $BERTH_BIN. Outside that VM ($BERTH_VM_GUEST
// unset) every test skips: run them with `go test ./integration/vm`.
package guest
