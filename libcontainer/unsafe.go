package libcontainer

import "unsafe"

// uintptrOf passes a Go array to a raw system call; the caller keeps it alive until it returns.
func uintptrOf(p *uint32) uintptr { return uintptr(unsafe.Pointer(p)) }
