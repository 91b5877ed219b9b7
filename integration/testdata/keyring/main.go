// Command keyring prints the serial and description of its session keyring: a static helper
// the integration tests put into the container's rootfs (busybox has no keyctl).
package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

func main() {
	id, err := unix.KeyctlGetKeyringID(unix.KEY_SPEC_SESSION_KEYRING, false)
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyring:", err)
		os.Exit(1)
	}
	desc, err := unix.KeyctlString(unix.KEYCTL_DESCRIBE, id)
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyring:", err)
		os.Exit(1)
	}
	fmt.Printf("%d %s\n", id, desc)
}
