package guest

import (
	"fmt"
	"os"
	"strconv"
)

// helperMain runs when this test binary is a container's program (BERTH_GUEST_ROLE set):
//
//	alloc  touch $BERTH_GUEST_MB MiB of anonymous memory, then exit 0
func helperMain(role string) int {
	switch role {
	case "alloc":
		mb, _ := strconv.Atoi(os.Getenv("BERTH_GUEST_MB"))
		var keep [][]byte
		for i := 0; i < mb; i++ {
			b := make([]byte, 1<<20)
			for j := 0; j < len(b); j += 4096 {
				b[j] = 1
			}
			keep = append(keep, b)
		}
		fmt.Printf("allocated %d MiB\n", len(keep))
		return 0
	}
	fmt.Fprintf(os.Stderr, "unknown role %q\n", role)
	return 2
}
