package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runcProc is a `runc run` or `runc exec` kept in the foreground as a child
// of the test binary. runc --detach would orphan the container's process
// to the host's pid 1, and on cgroup v2 a cgroup stays busy until its
// zombies are reaped: whenever pid 1 gets round to it (over a second
// here). In the foreground, runc reaps its process as soon as it dies and
// the test binary reaps runc, so cleanup waits only for the kill.
type runcProc struct {
	cmd     *exec.Cmd
	pidFile string
	log     string
	exited  chan struct{} // closed when cmd.Wait returns
	err     error         // cmd.Wait's result, set before exited closes
}

// startRunc starts `runc <sub> <flags> <id> <args>` with --pid-file
// added. Its stdio are files, not pipes: the container's process inherits
// them and may hold them open after runc is gone, and exec.Cmd would wait
// for a pipe's end. name names the pid file and log in the bundle.
func startRunc(runc, bundle, name, sub, id string, flags, args []string) (*runcProc, error) {
	p := &runcProc{
		pidFile: filepath.Join(bundle, name+".pid"),
		log:     filepath.Join(bundle, name+".log"),
		exited:  make(chan struct{}),
	}
	logf, err := os.Create(p.log)
	if err != nil {
		return nil, fmt.Errorf("create log: %w", err)
	}
	defer logf.Close()
	full := append([]string{"--root", StateRoot, sub, "--pid-file", p.pidFile}, flags...)
	full = append(append(full, id), args...)
	p.cmd = exec.Command(runc, full...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start runc: %w", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// pidPoll is how often waitPID looks for the pid file: runc has no way
// to tell its parent that the process started other than that file.
const pidPoll = 5 * time.Millisecond

// waitPID waits until runc has written the host pid of the process it
// started, or has exited without, and returns that pid. id only names
// the container in errors.
func (p *runcProc) waitPID(id string) (int, error) {
	deadline := time.After(startTimeout)
	tick := time.NewTicker(pidPoll)
	defer tick.Stop()
	for {
		// runc writes the file under a temporary name and renames it: a
		// file that exists is whole.
		if b, err := os.ReadFile(p.pidFile); err == nil {
			return strconv.Atoi(strings.TrimSpace(string(b)))
		}
		select {
		case <-p.exited:
			if b, err := os.ReadFile(p.pidFile); err == nil {
				return strconv.Atoi(strings.TrimSpace(string(b)))
			}
			out, _ := os.ReadFile(p.log)
			return 0, fmt.Errorf("%s exited before starting its process (%v): %s", id[:12], p.err, bytes.TrimSpace(out))
		case <-deadline:
			_ = p.cmd.Process.Kill()
			return 0, fmt.Errorf("%s: no process started within %s", id[:12], startTimeout)
		case <-tick.C:
		}
	}
}

// wait waits for runc to exit until deadline, then kills it. Its exit
// status is no error: a process killed with its container exits non-zero.
func (p *runcProc) wait(deadline time.Time) error {
	if p == nil {
		return nil
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(time.Until(deadline)):
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	return errors.New("runc did not exit after the container was killed: " + p.cmd.String())
}
