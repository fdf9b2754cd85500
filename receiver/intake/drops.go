package intake

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"time"
)

// readDrops reads the kernel's per-socket drop counters from /proc/net/udp
// and /proc/net/udp6, keyed by socket inode. On systems without procfs it
// returns an empty map.
func readDrops() map[uint64]uint64 {
	out := map[uint64]uint64{}
	for _, s := range readUDPSockets() {
		out[s.inode] = s.drops
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
	ctx := context.Background()
	if !log.Enabled(ctx, slog.LevelWarn) {
		return
	}
	// The record carries the caller's position, not this function's, so
	// that the log's source names the check that failed.
	var pc [1]uintptr
	runtime.Callers(2, pc[:])
	r := slog.NewRecord(now, slog.LevelWarn, msg, pc[0])
	r.Add(args...)
	_ = log.Handler().Handle(ctx, r)
}
