// Package libcontainer owns a container's lifecycle: it turns a bundle into a created container
// (create.go), lets it run (start.go), signals it (kill.go), removes it (delete.go) and keeps its
// state on disk under the runtime root (state.go, store.go).
//
// It also owns the container's init process (init.go): the berth binary re-executed as
// "berth init" inside the new namespaces, which builds the root filesystem (package rootfs),
// sets up the process (process.go, capabilities.go, user.go), waits for `start` on the exec fifo
// and finally executes the user's program.
//
// See docs/design.md for the whole process chain.
package libcontainer
