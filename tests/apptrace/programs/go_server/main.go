// The Go side of the function-latency tests (tests/e2e/test_apptrace.py)
// and benchmark (bench/apptrace_overhead.sh), standard library only.
//
// `apptracego serve -addr ADDR` is an HTTP/1.1 server whose handlers are
// the functions traced: main.handleGetUser (/user?sleep_ms=S&bytes=N)
// sleeps S ms, then sends a response with a body of exactly N bytes and
// flushes it, so that the bytes leave on the socket while the handler runs;
// main.handleHealth (/health) answers "ok\n" at once. /stats (main.serveStats,
// a name the tests' patterns do not match) answers the requests each handler
// finished and how many are running, as JSON; the same JSON is printed on
// SIGINT/SIGTERM, before exiting 0. /grow calls main.growStack, whose entry
// runs twice per call (the stack grows at its entry), on a new goroutine.
//
// `apptracego hot -rate R -duration D [-wait]` calls main.hotFunction R
// times a second (0: as fast as it can) for D and prints, as JSON, the calls
// done and the wall and CPU (user + system) nanoseconds per call: a uprobe's
// cost is CPU time of the traced process. With -wait it prints "ready" and
// starts on SIGUSR1, so that a tracer can attach to it first.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	getUserDone int64 // atomic
	healthDone  int64
	running     int64
)

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "apptracego:", err)
		os.Exit(1)
	}
}

// Body bytes the test can check: a repeating alphabet.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

func intParam(r *http.Request, name string) (int, bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, true
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}

//go:noinline
func handleGetUser(w http.ResponseWriter, r *http.Request) {
	// No defer: its closure would be a function main.handleGetUser.func1,
	// which "main.handle*" would match.
	atomic.AddInt64(&running, 1)
	sleepMs, ok1 := intParam(r, "sleep_ms")
	n, ok2 := intParam(r, "bytes")
	if !ok1 || !ok2 {
		http.Error(w, "bad sleep_ms or bytes", http.StatusBadRequest)
		atomic.AddInt64(&running, -1)
		return
	}
	time.Sleep(time.Duration(sleepMs) * time.Millisecond)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(n))
	w.Write(pattern(n))
	// The headers and body go out now, from this goroutine, inside the call.
	w.(http.Flusher).Flush()
	atomic.AddInt64(&getUserDone, 1)
	atomic.AddInt64(&running, -1)
}

//go:noinline
func handleHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", "3")
	w.Write([]byte("ok\n"))
	w.(http.Flusher).Flush()
	atomic.AddInt64(&healthDone, 1)
}

// A frame larger than a new goroutine's stack: its prologue calls
// runtime.morestack, which jumps back to the function's first instruction
// once the stack has grown, so the entry runs twice for one call. A tracer
// must still count one call, not a recursion that never returns.
//
//go:noinline
func growStack(n int) int {
	var buf [16384]byte
	buf[n%len(buf)] = byte(n)
	return int(buf[(n*7)%len(buf)]) + n
}

// /grow: growStack on a fresh goroutine (a small stack) per request.
func serveGrow(w http.ResponseWriter, r *http.Request) {
	done := make(chan int)
	go func() { done <- growStack(len(r.URL.RawQuery)) }()
	v := <-done
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "%d\n", v)
}

func stats() []byte {
	b, _ := json.Marshal(map[string]int64{"getUser": atomic.LoadInt64(&getUserDone),
		"health": atomic.LoadInt64(&healthDone), "running": atomic.LoadInt64(&running)})
	return append(b, '\n')
}

func serveStats(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(stats())
}

func serve(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	fs.Parse(args)
	mux := http.NewServeMux()
	mux.HandleFunc("/user", handleGetUser)
	mux.HandleFunc("/health", handleHealth)
	mux.HandleFunc("/stats", serveStats)
	mux.HandleFunc("/grow", serveGrow)
	ln, err := net.Listen("tcp", *addr)
	check(err)
	srv := &http.Server{Handler: mux}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	fmt.Printf("listening on %s pid %d\n", ln.Addr(), os.Getpid())
	go srv.Serve(ln)
	<-stop
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	os.Stdout.Write(stats())
}

var sink uint64

// The function the benchmark times: a few nanoseconds of work the compiler
// cannot drop, and never inlined, so that every call enters and returns.
//
//go:noinline
func hotFunction(x uint64) uint64 {
	return x*2654435761 + 1
}

func cpuNs() int64 {
	var ru syscall.Rusage
	check(syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func hot(args []string) {
	fs := flag.NewFlagSet("hot", flag.ExitOnError)
	rate := fs.Int("rate", 0, "calls per second (0: as fast as possible)")
	duration := fs.Duration("duration", 5*time.Second, "how long to run")
	wait := fs.Bool("wait", false, "print \"ready\", then start on SIGUSR1 (once traced)")
	fs.Parse(args)
	if *wait {
		start := make(chan os.Signal, 1)
		signal.Notify(start, syscall.SIGUSR1)
		fmt.Printf("ready pid %d\n", os.Getpid())
		<-start
	}
	var calls uint64
	t0, c0 := time.Now(), cpuNs()
	end := t0.Add(*duration)
	for {
		now := time.Now()
		if !now.Before(end) {
			break
		}
		due := uint64(1000)
		if *rate > 0 {
			// Catch up with the schedule in batches, then sleep: a timer
			// per call would cost more than the call.
			due = uint64(now.Sub(t0).Seconds()*float64(*rate)) - calls
		}
		for i := uint64(0); i < due; i++ {
			sink += hotFunction(sink)
		}
		calls += due
		if *rate > 0 {
			time.Sleep(time.Millisecond)
		}
	}
	wall, cpu := time.Since(t0).Nanoseconds(), cpuNs()-c0
	out, _ := json.Marshal(map[string]interface{}{"calls": calls, "wall_ns": wall, "cpu_ns": cpu,
		"wall_ns_per_call": float64(wall) / float64(calls),
		"cpu_ns_per_call":  float64(cpu) / float64(calls), "sink": sink})
	fmt.Println(string(out))
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: apptracego serve -addr ADDR | hot [-rate R] [-duration D]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2:])
	case "hot":
		hot(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, "apptracego: unknown command", os.Args[1])
		os.Exit(2)
	}
}
