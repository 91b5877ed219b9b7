package criu

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"google.golang.org/protobuf/proto"
)

// criu's log as 3.17 writes it: the first errors are the cause, passed on in that order.
func TestLogErrors(t *testing.T) {
	log := filepath.Join(t.TempDir(), "dump.log")
	os.WriteFile(log, []byte(strings.Join([]string{
		"(00.000100) Version: 3.17.1 (gitid 0)",
		"(00.015460) Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds",
		"(00.015461) Error (criu/vdso.c:613): vdso: Failed to fill self vdso symtable",
		"(00.015462) Error (criu/kerndat.c:1615): kerndat_vdso_fill_symtable failed when initializing kerndat.",
	}, "\n")), 0o600)
	got := LogErrors(log, 2)
	want := []string{"vdso: Unexpected rt vDSO area bounds", "vdso: Failed to fill self vdso symtable"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LogErrors = %q, want %q", got, want)
	}
	if LogErrors(filepath.Join(t.TempDir(), "none"), 2) != nil {
		t.Error("LogErrors of a missing log is not empty")
	}
}

// A refusal names the request and criu's own message, then its log.
func TestFailure(t *testing.T) {
	typ := rpc.CriuReqType_PRE_DUMP
	req := &rpc.CriuReq{Type: &typ}
	err := Failure(req, &rpc.CriuResp{CrErrmsg: proto.String("No such process"), CrErrno: proto.Int32(3)}, "")
	if err.Error() != "criu pre-dump failed: No such process" {
		t.Errorf("Failure = %q", err)
	}
	err = Failure(req, &rpc.CriuResp{CrErrno: proto.Int32(3)}, "")
	if err.Error() != "criu pre-dump failed: errno 3" {
		t.Errorf("Failure without a message = %q", err)
	}
}

// A criu that is not there: the error says criu is needed and not found.
func TestLookupMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Lookup("")
	if err == nil || !strings.Contains(err.Error(), "needs criu") || !strings.Contains(err.Error(), ErrNotInstalled.Error()) {
		t.Errorf("Lookup without criu: %v", err)
	}
	if _, err := Check("/nonexistent/criu"); err == nil || !strings.Contains(err.Error(), "/nonexistent/criu") {
		t.Errorf("Check of a missing path: %v", err)
	}
}

func TestNotFoundNamesMinVersion(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Lookup("criu")
	if err == nil || !strings.HasPrefix(err.Error(), "checkpoint/restore needs criu (3.14 or newer): criu: executable file not found in $PATH") {
		t.Errorf("Lookup: %v", err)
	}
}
