package intake

import (
	"bufio"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// readDrops reads the kernel's per-socket drop counters from /proc/net/udp
// and /proc/net/udp6, keyed by socket inode. On systems without procfs it
// returns an empty map.
func readDrops() map[uint64]uint64 {
	out := map[uint64]uint64{}
	for _, p := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 13 {
				continue
			}
			inode, err1 := strconv.ParseUint(fs[9], 10, 64)
			drops, err2 := strconv.ParseUint(fs[12], 10, 64)
			if err1 == nil && err2 == nil {
				out[inode] = drops
			}
		}
		f.Close()
	}
	return out
}

// logLimiter lets one log line per key through per interval and reports how
// many were suppressed in between, so hostile traffic cannot flood the log.
type logLimiter struct {
	mu   sync.Mutex
	last map[string]time.Time
	supp map[string]int
}

// logInterval is the minimum time between two log lines of the same kind.
const logInterval = 10 * time.Second

func (l *logLimiter) log(log *slog.Logger, key, msg string, args ...any) {
	l.mu.Lock()
	if l.last == nil {
		l.last, l.supp = map[string]time.Time{}, map[string]int{}
	}
	now := time.Now()
	if t, ok := l.last[key]; ok && now.Sub(t) < logInterval {
		l.supp[key]++
		l.mu.Unlock()
		return
	}
	n := l.supp[key]
	l.last[key], l.supp[key] = now, 0
	l.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	log.Warn(msg, args...)
}
