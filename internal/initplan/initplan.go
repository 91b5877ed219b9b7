// Package initplan is the format of the plan `berth create` sends a container's init when the
// init's C stage (libcontainer/nsenter/plan*.c) builds the container instead of a Go runtime:
// a flat list of operations, each an op code and its fields, written here and read there.
// Texts that reach berth again (explain steps, error prefixes) are written JSON-escaped, so
// that the C stage only copies them into its messages.
//
// Layout: "BPL1", a u32 length of what follows, then records: a u16 op code and the op's
// fields, each a u64 (little-endian) or a string (u32 length counting a final NUL, the
// bytes, the NUL). The op codes and their fields are listed in libcontainer/nsenter/plan.h,
// which must agree with the constants below.
package initplan

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
)

// Op codes (plan.h's enum planOp).
const (
	OpStep           = 1  // name, msg
	OpStepPid        = 2  // name, msg before the pid, msg after it
	OpUmask          = 3  // mask
	OpWriteFile      = 4  // path, data, what
	OpRlimit         = 5  // resource, soft, hard, what
	OpMountRoot      = 6  // flags, what: mount("", "/", flags)
	OpMakePrivate    = 7  // path, what
	OpBindRootfs     = 8  // rootfs, what
	OpRefuseSymlink  = 9  // dest, what
	OpMkdirTarget    = 10 // dest, what
	OpMount          = 11 // source, fstype, flags, data, fallback fd, fallback remount flags, what
	OpBind           = 12 // source, source fd, rec, dest, what
	OpRemountBind    = 13 // dest, flags, what
	OpSetAttr        = 14 // dest, set, clear, sysfs source, what
	OpPropagate      = 15 // dest, flag, what
	OpCgroupTree     = 16 // attrs, source, what
	OpCgroupBind     = 17 // source, name, attrs, what
	OpCgroupLink     = 18 // target, name
	OpCgroupReadonly = 19 // what
	OpMknod          = 20 // path, mode, major, minor, uid, gid, what
	OpBindDevice     = 21 // path, major, minor, what
	OpDevLink        = 22 // target, name
	OpMakeCwd        = 23 // cwd, what
	OpPivotRoot      = 24 // rootfs, what
	OpSysctl         = 25 // relative path, value, what
	OpMask           = 26 // path, what
	OpReadonlyPath   = 27 // path, what
	OpRootReadonly   = 28 // what
	OpReopenDevNull  = 29
	OpReopenRoot     = 30
	OpHostname       = 31 // name, what
	OpDomainname     = 32 // name, what
	OpKeyring        = 33 // what
	OpEnv            = 34 // count, strings
	OpArgs           = 35 // count, strings
	OpHome           = 36 // uid
	OpLookPath       = 37 // name, PATH
	OpCwd            = 38 // cwd
	OpFdDir          = 39
	OpSeccomp        = 40 // program bytes, flags, why-step
	OpCapBound       = 41 // keep mask, last cap
	OpKeepCaps       = 42 // 0 or 1
	OpStdio          = 43 // uid, inherited
	OpUser           = 44 // uid, gid, setgroups, count, gids
	OpCwdAsUser      = 45 // cwd
	OpCapSet         = 46 // effective, permitted, inheritable
	OpAmbient        = 47 // cap, name
	OpNoNewPrivs     = 48
	OpReady          = 49 // detached
	OpCloexec        = 50 // first
	OpExec           = 51 // preserve, fifo fd
	OpStepStart      = 52 // name, msg: a step timed at the constructor's start
	OpStepPath       = 53 // name, msg before the program's path, msg after it
	OpCgroupFresh    = 54 // name, fstype, flags, data, step, what
)

// Magic starts every plan.
const Magic = "BPL1"

// Writer builds a plan.
type Writer struct {
	buf []byte
	// Explain: steps are written (otherwise Step writes nothing).
	Explain bool
	// Discard: nothing is kept (a check that a config can be planned at all).
	Discard bool
}

// headerLen is the frame before the records: Magic and the records' length.
const headerLen = len(Magic) + 4

// grow makes room for n more bytes. The first call takes a buffer a usual plan fits in (a
// `runc spec` container's is about 6 KiB), with the frame's header reserved at its start, so
// the plan is neither regrown nor copied to be framed.
func (w *Writer) grow(n int) bool {
	if w.Discard {
		return false
	}
	if w.buf == nil {
		w.buf = make([]byte, headerLen, max(16<<10, headerLen+n))
	}
	return true
}

// Op starts a record.
func (w *Writer) Op(op uint16) *Writer {
	if w.grow(2) {
		w.buf = binary.LittleEndian.AppendUint16(w.buf, op)
	}
	return w
}

// U writes a number field.
func (w *Writer) U(v uint64) *Writer {
	if w.grow(8) {
		w.buf = binary.LittleEndian.AppendUint64(w.buf, v)
	}
	return w
}

// I writes a signed number field (a descriptor or -1).
func (w *Writer) I(v int) *Writer { return w.U(uint64(int64(v))) }

// S writes a string field as it is.
func (w *Writer) S(s string) *Writer {
	if w.grow(len(s) + 5) {
		w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(len(s)+1))
		w.buf = append(w.buf, s...)
		w.buf = append(w.buf, 0)
	}
	return w
}

// J writes a string field JSON-escaped (without quotes): a text the C stage puts into a message.
func (w *Writer) J(s string) *Writer {
	if w.Discard {
		return w
	}
	return w.S(Escape(s))
}

// Jf is J with a format.
func (w *Writer) Jf(format string, a ...any) *Writer {
	if w.Discard {
		return w
	}
	return w.J(fmt.Sprintf(format, a...))
}

// Strings writes a count and the strings.
func (w *Writer) Strings(l []string) *Writer {
	w.U(uint64(len(l)))
	for _, s := range l {
		w.S(s)
	}
	return w
}

// Step writes an explain step (when explaining): the C stage sends it with the time it
// reaches it, under the given name, in the Go init's words.
func (w *Writer) Step(name, format string, a ...any) {
	if !w.Explain {
		return
	}
	w.Op(OpStep).J(name).J(fmt.Sprintf(format, a...))
}

// Bytes is the finished plan, framed.
func (w *Writer) Bytes() []byte {
	w.grow(0)
	copy(w.buf, Magic)
	binary.LittleEndian.PutUint32(w.buf[len(Magic):headerLen], uint32(len(w.buf)-headerLen))
	return w.buf
}

// Escape is s as the inside of a JSON string, as encoding/json writes it. Most texts need no
// escape at all: those are returned as they are, without a trip through json.Marshal.
func Escape(s string) string {
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		c := s[i]
		plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	if plain {
		return s
	}
	b, _ := json.Marshal(s)
	return strings.TrimSuffix(strings.TrimPrefix(string(b), `"`), `"`)
}
