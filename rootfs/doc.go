// Package rootfs owns the container's root filesystem as the init process builds it, inside
// the new mount namespace and before the user's program runs:
//
//   - setRootPropagation and bindRootfs (rootfs.go) make the bundle's rootfs a private mount
//     point that nothing propagates out of;
//   - mountEntry (mount.go) applies config.json's mounts in order, each destination resolved
//     inside the rootfs so that symlinks and ".." cannot send a mount to the host, and each
//     mount made through /proc/self/fd of the opened target, never through a path;
//   - createDevices (devices.go) fills /dev;
//   - pivotRoot (pivot.go) swaps the root and drops the host's (moveRoot for --no-pivot);
//   - maskPaths and readonlyPaths (masks.go) hide or freeze parts of /proc and /sys.
//
// Every step reports itself through package explain under its function's name.
package rootfs
