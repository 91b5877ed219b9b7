//go:build !cgo

package sigrelay

import (
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

// Relay without cgo (the VM guest's static test binaries): os/signal catches them all.
type Relay struct {
	ch chan os.Signal
}

// Catch starts holding every signal.
func Catch() (*Relay, error) {
	r := &Relay{ch: make(chan os.Signal, 64)}
	signal.Notify(r.ch)
	return r, nil
}

// Next waits for the next caught signal.
func (r *Relay) Next() (unix.Signal, error) {
	return (<-r.ch).(unix.Signal), nil
}
