// berth-labs runs the workshop labs of docs/labs: each page's ```sh steps, in order, in one
// shell, checking that each exits 0 and prints the lines of the ```text block after it.
//
//	berth-labs docs/labs/1-by-hand.md             walk a student through a page: each step is
//	                                              shown, run on Enter, its output checked
//	berth-labs -check [-berth BIN] PAGE...        run pages unattended (make test, make labs):
//	                                              each in a fresh directory with its own berth
//	                                              --root, everything it left removed after
//
// With -berth, `berth` in the pages is BIN with a private --root (a wrapper first on PATH);
// without it, the berth on PATH. The exit status is 1 if a step failed.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	check := flag.Bool("check", false, "run the pages unattended, each in a fresh directory, and fail on the first step that does not match")
	berth := flag.String("berth", "", "the berth binary the pages' `berth` runs (with a private --root); default: berth on PATH")
	keep := flag.Bool("keep", false, "with -check: keep a failed page's directory (its steps, outputs, state root)")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: berth-labs [-check [-berth BIN] [-keep]] PAGE.md...")
		os.Exit(2)
	}
	if *berth != "" {
		abs, err := filepath.Abs(*berth)
		if err != nil {
			fatal(err)
		}
		*berth = abs
	}
	failed := false
	for _, page := range flag.Args() {
		f, err := os.Open(page)
		if err != nil {
			fatal(err)
		}
		steps, err := parsePage(f)
		f.Close()
		if err != nil {
			fatal(fmt.Errorf("%s: %v", page, err))
		}
		if *check {
			if !checkPage(page, steps, *berth, *keep) {
				failed = true
			}
		} else if !walkPage(page, steps, *berth) {
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "berth-labs:", err)
	os.Exit(2)
}

// lab is the directory a page runs in and the environment of its shell.
type lab struct {
	dir    string // removed at the end (check mode)
	ctl    string // the runner's files
	cwd    string // where the shell starts
	root   string // berth's --root with -berth
	env    []string
	marker string // in the environment of everything the page starts
	berth  string
}

// newLab makes a page's directory; its shell starts in an empty home/ there. Unattended
// (fresh), HOME and TMPDIR are in it too, so nothing the page makes lands elsewhere.
func newLab(berth string, fresh bool) (*lab, error) {
	dir, err := os.MkdirTemp("", "berth-lab-")
	if err != nil {
		return nil, err
	}
	// A user-namespaced container's root (an unprivileged uid on the host) must reach the
	// rootfs under it.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	l := &lab{dir: dir, ctl: filepath.Join(dir, "ctl"), cwd: filepath.Join(dir, "home"),
		root: filepath.Join(dir, "state"), marker: "BERTH_LAB_RUN=" + dir, berth: berth}
	for _, d := range []string{l.ctl, l.cwd, filepath.Join(dir, "tmp"), filepath.Join(dir, "bin")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	path := os.Getenv("PATH")
	if berth != "" {
		wrapper := fmt.Sprintf("#!/bin/sh\n# berth under test, with this lab's own state root\nexec %q --root %q \"$@\"\n", berth, l.root)
		if err := os.WriteFile(filepath.Join(dir, "bin", "berth"), []byte(wrapper), 0o755); err != nil {
			return nil, err
		}
		path = filepath.Join(dir, "bin") + ":" + path
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "TMPDIR=") && !strings.HasPrefix(kv, "LC_ALL=") {
			l.env = append(l.env, kv)
		}
	}
	l.env = append(l.env, "PATH="+path, "LC_ALL=C", l.marker)
	if fresh {
		l.env = append(l.env, "TMPDIR="+filepath.Join(dir, "tmp"), "HOME="+l.cwd)
	}
	return l, nil
}

// cleanup kills what the page left running, force-deletes its containers, detaches its
// mounts and, unless keep, removes its directory.
func (l *lab) cleanup(keep bool) {
	killMarked(l.marker)
	bin := l.berth
	if bin == "" {
		bin, _ = exec.LookPath("berth")
	}
	if bin != "" {
		// Every state root under the lab's directory (berth's, a shim's --runc-root...).
		filepath.WalkDir(l.dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() && (d.Name() == "rootfs" || strings.Count(strings.TrimPrefix(p, l.dir), "/") > 6) {
				return filepath.SkipDir
			}
			if !d.IsDir() && d.Name() == "state.json" {
				c := filepath.Dir(p)
				exec.Command(bin, "--root", filepath.Dir(c), "delete", "--force", filepath.Base(c)).Run()
			}
			return nil
		})
	}
	killMarked(l.marker)
	unmountUnder(l.dir)
	if !keep {
		os.RemoveAll(l.dir)
	}
}

// checkPage runs a page unattended; it reports each step and says whether all passed.
func checkPage(page string, steps []*step, berth string, keep bool) bool {
	name := filepath.Base(page)
	start := time.Now()
	l, err := newLab(berth, true)
	if err != nil {
		fmt.Printf("FAIL %s: %v\n", name, err)
		return false
	}
	s, err := startSession(l.ctl, l.cwd, l.env)
	if err != nil {
		fmt.Printf("FAIL %s: %v\n", name, err)
		l.cleanup(false)
		return false
	}
	ok := true
	ran := map[*step]bool{}
	for _, st := range steps {
		if st.norun {
			continue
		}
		t0 := time.Now()
		out, code, err := s.run(st.script, time.Duration(st.timeout)*time.Second)
		ran[st] = true
		why := ""
		switch {
		case err != nil:
			why = err.Error()
		case code != 0:
			why = fmt.Sprintf("exit status %d", code)
		case st.want != nil:
			if miss := match(st.want, out); miss != "" {
				why = fmt.Sprintf("output lacks %q", miss)
			}
		}
		if why == "" {
			fmt.Printf("ok   %s:%d (%.1fs)\n", name, st.line, time.Since(t0).Seconds())
			continue
		}
		ok = false
		fmt.Printf("FAIL %s:%d: %s\n--- step\n%s--- output\n%s---\n", name, st.line, why, st.script, out)
		break
	}
	if !ok {
		// The page's own cleanup steps, as a student who gave up would run them.
		for _, st := range steps {
			if st.cleanup && !ran[st] {
				s.run(st.script, time.Duration(st.timeout)*time.Second)
			}
		}
	}
	s.kill()
	l.cleanup(keep && !ok)
	if !ok && keep {
		fmt.Printf("kept %s\n", l.dir)
	}
	verdict := "PASS"
	if !ok {
		verdict = "FAIL"
	}
	fmt.Printf("%s %s (%.1fs)\n", verdict, name, time.Since(start).Seconds())
	return ok
}

// walkPage shows a page step by step to a student: the text, then the command, which runs
// when they press Enter; then its output and whether it shows what the page expects.
func walkPage(page string, steps []*step, berth string) bool {
	l, err := newLab(berth, false)
	if err != nil {
		fatal(err)
	}
	defer fmt.Printf("Your files are in %s\n", l.cwd)
	defer l.cleanup(true)
	s, err := startSession(l.ctl, l.cwd, l.env)
	if err != nil {
		fatal(err)
	}
	defer s.kill()
	ran := map[*step]bool{}
	// Quitting early still removes what the page made, as its cleanup steps say.
	defer func() {
		for _, st := range steps {
			if st.cleanup && !ran[st] {
				s.run(st.script, time.Duration(st.timeout)*time.Second)
			}
		}
	}()
	in := bufio.NewReader(os.Stdin)
	fmt.Printf("%s: %d steps, run in %s. At each one: Enter runs it, s skips it, q quits\n(what the page made is removed on the way out).\n", page, len(steps), l.cwd)
	ok := true
	for i, st := range steps {
		if p := strings.TrimSpace(st.prose); p != "" {
			fmt.Printf("\n%s\n", p)
		}
		if st.norun {
			fmt.Printf("\n(not run here)\n%s", indent(st.script, "  "))
			continue
		}
		fmt.Printf("\n[%d/%d]\n%s", i+1, len(steps), indent(st.script, "$ "))
		fmt.Print("[Enter/s/q] ")
		answer, err := in.ReadString('\n')
		answer = strings.TrimSpace(answer)
		if err != nil || answer == "q" {
			return ok
		}
		if answer == "s" {
			continue
		}
		out, code, err := s.run(st.script, time.Duration(st.timeout)*time.Second)
		ran[st] = true
		fmt.Print(out)
		switch {
		case err != nil:
			fmt.Printf(">>> %v\n", err)
			ok = false
		case code != 0:
			fmt.Printf(">>> this step failed (exit status %d)\n", code)
			ok = false
		case st.want != nil:
			if miss := match(st.want, out); miss != "" {
				fmt.Printf(">>> the page expected a line with %q\n", miss)
				ok = false
			} else {
				fmt.Println(">>> as expected")
			}
		}
	}
	fmt.Println("\nEnd of the lab.")
	return ok
}

func indent(s, prefix string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(prefix + l + "\n")
	}
	return b.String()
}
