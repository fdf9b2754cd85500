package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowmetrics/flowmetrics/internal/testkit"
)

// heldInStart runs flowmetrics with a networks file that is a FIFO, so
// start is held inside the file's read until release writes it (and every
// later read of it, until the test ends). exited receives the process's
// exit once.
func heldInStart(t *testing.T) (cmd *exec.Cmd, log *testkit.SyncBuffer, exited chan error, release func()) {
	t.Helper()
	const networks = "prefix,name\n10.0.0.0/8,ten\n"
	dir := t.TempDir()
	fifo := filepath.Join(dir, "networks.csv")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	cfg := filepath.Join(dir, "flowmetrics.yml")
	writeFile(t, cfg, "enrich:\n  networks_file: networks.csv\n")
	log = &testkit.SyncBuffer{}
	cmd = exec.Command(binary, "--config.file="+cfg,
		"--flow.listen-address="+testkit.FreePort(t, "udp"), "--web.listen-address="+testkit.FreePort(t, "tcp"))
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited = make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	f, err := os.OpenFile(fifo, os.O_WRONLY, 0) // flowmetrics is in start, reading the file
	if err != nil {
		t.Fatal(err)
	}
	release = func() {
		_, _ = f.WriteString(networks)
		f.Close()
		// Start and a reload read the file again, a few times each: write
		// it for every read until the test ends.
		stop := make(chan struct{})
		fed := make(chan struct{})
		go func() {
			defer close(fed)
			for {
				// Let the previous read see its end of file and close the
				// FIFO first, or this write joins that read.
				time.Sleep(200 * time.Millisecond)
				w, err := os.OpenFile(fifo, os.O_WRONLY, 0) // until a reader opens it
				select {
				case <-stop:
					if err == nil {
						w.Close()
					}
					return
				default:
				}
				if err != nil {
					return
				}
				_, _ = w.WriteString(networks)
				w.Close()
			}
		}()
		t.Cleanup(func() {
			close(stop)
			// Unblock a writer waiting for a reader.
			if r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
				<-fed
				r.Close()
			}
		})
	}
	return cmd, log, exited, release
}

// TestSignalsDuringStart sends SIGHUP (and then SIGTERM) while flowmetrics
// is still starting. A SIGHUP then (a systemctl reload, a docker kill -s
// HUP or a configuration push that coincides with a restart) killed the
// process, exit status 129 without a log line; it must be served as a
// reload once started.
func TestSignalsDuringStart(t *testing.T) {
	cmd, log, exited, release := heldInStart(t)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let a default SIGHUP disposition act
	release()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(log.String(), "configuration reloaded") && time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("flowmetrics exited (%v) on a SIGHUP during start; log:\n%s", err, log)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if !strings.Contains(log.String(), "configuration reloaded") {
		t.Fatalf("the SIGHUP sent during start was not served as a reload; log:\n%s", log)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit0(t, exited, log, "after SIGTERM")
}

// TestTermAfterHupDuringStart: a SIGHUP and then a SIGTERM both arrive
// while flowmetrics is starting (systemctl reload, then stop). The SIGTERM
// must not be lost behind the pending SIGHUP: flowmetrics stops, rather
// than running on until systemd's SIGKILL.
func TestTermAfterHupDuringStart(t *testing.T) {
	cmd, log, exited, release := heldInStart(t)
	for _, s := range []os.Signal{syscall.SIGHUP, syscall.SIGTERM} {
		if err := cmd.Process.Signal(s); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // let each be delivered
	}
	release()
	waitExit0(t, exited, log, "after a SIGTERM sent during start behind a SIGHUP")
}

// TestTermDuringStartExitsAtOnce: a SIGTERM while start is held up (here
// for good: the networks file is never written) ends the process at once
// with status 0, as a stop before the start did; it is not held until a
// start that may never finish.
func TestTermDuringStartExitsAtOnce(t *testing.T) {
	cmd, log, exited, _ := heldInStart(t)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit0(t, exited, log, "after a SIGTERM during a start held up")
	if !strings.Contains(log.String(), "shutting down during start") {
		t.Errorf("the log does not say why it stopped:\n%s", log)
	}
}

// waitExit0 waits up to 10 s for the process to exit with status 0 (and
// puts its exit back for the cleanup); when names the situation.
func waitExit0(t *testing.T, exited chan error, log *testkit.SyncBuffer, when string) {
	t.Helper()
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("exit %s: %v; log:\n%s", when, err, log)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no exit %s; log:\n%s", when, log)
	}
}
