// What tests/apptrace/trace_program_test.cc traces in Go: handle() runs on
// many goroutines at once, sleeps (the goroutine parks and may resume on
// another thread), then sends BYTES on its own TCP connection. It waits for
// a line on stdin before it starts, so that the probes are in first.
// big() and fib() are the calls whose entry runs more than once: big's
// frame does not fit a new goroutine's stack, so its entry calls morestack,
// which moves the stack and jumps back to the entry; fib recurses.
//
//	go_target PORT GOROUTINES CALLS SLEEP_MS BYTES
//	go_target stack GOROUTINES      big(i) then fib(fibN) once on each of GOROUTINES new goroutines
//	go_target panic                 mayPanic(true) (recovered), then other(), then mayPanic(false)
//	go_target loop CALLS            trivial() CALLS times; prints ns per call
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

//go:noinline
func handle(c net.Conn, sleep time.Duration, payload []byte) error {
	time.Sleep(sleep)
	_, err := c.Write(payload)
	return err
}

const fibN = 10

//go:noinline
func big(n int) int {
	var buf [16384]byte
	buf[n%len(buf)] = byte(n)
	return int(buf[(n*7)%len(buf)]) + n
}

//go:noinline
func fib(n int) int {
	if n < 2 {
		return n
	}
	return fib(n-1) + fib(n-2)
}

//go:noinline
func mayPanic(panics bool) int {
	if panics {
		panic("traced call that never returns")
	}
	return 1
}

//go:noinline
func other() int { return 2 }

//go:noinline
func trivial(x int) int { return x + 1 }

func loop(calls int) {
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		os.Exit(1)
	}
	acc := 0
	start := time.Now()
	for i := 0; i < calls; i++ {
		acc = trivial(acc)
	}
	elapsed := time.Since(start)
	fmt.Printf("%.1f\n", float64(elapsed.Nanoseconds())/float64(calls))
	if acc != calls {
		os.Exit(1)
	}
}

// Each call from the same depth of the same goroutine.
//
//go:noinline
func protect(f func() int) (r int) {
	defer func() {
		if recover() != nil {
			r = -1
		}
	}()
	return f()
}

func panics() {
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		os.Exit(1)
	}
	if protect(func() int { return mayPanic(true) }) != -1 || protect(other) != 2 ||
		protect(func() int { return mayPanic(false) }) != 1 {
		os.Exit(1)
	}
}

func stack(goroutines int) {
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		os.Exit(1)
	}
	var wg sync.WaitGroup
	for i := 0; i < goroutines; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if big(i) < i || fib(fibN) != 55 {
				os.Exit(1)
			}
		}(i)
	}
	wg.Wait()
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "loop" {
		n, err := strconv.Atoi(os.Args[2])
		if err != nil {
			os.Exit(2)
		}
		loop(n)
		return
	}
	if len(os.Args) == 2 && os.Args[1] == "panic" {
		panics()
		return
	}
	if len(os.Args) == 3 && os.Args[1] == "stack" {
		n, err := strconv.Atoi(os.Args[2])
		if err != nil {
			os.Exit(2)
		}
		stack(n)
		return
	}
	if len(os.Args) != 6 {
		os.Exit(2)
	}
	arg := func(i int) int {
		v, err := strconv.Atoi(os.Args[i])
		if err != nil {
			os.Exit(2)
		}
		return v
	}
	port, goroutines, calls, sleepMs, bytes := arg(1), arg(2), arg(3), arg(4), arg(5)
	conns := make([]net.Conn, goroutines)
	for i := range conns {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			os.Exit(1)
		}
		conns[i] = c
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		os.Exit(1)
	}
	payload := make([]byte, bytes)
	var wg sync.WaitGroup
	failed := false
	var mu sync.Mutex
	for _, c := range conns {
		wg.Add(1)
		go func(c net.Conn) {
			defer wg.Done()
			for i := 0; i < calls; i++ {
				if err := handle(c, time.Duration(sleepMs)*time.Millisecond, payload); err != nil {
					mu.Lock()
					failed = true
					mu.Unlock()
				}
			}
			c.Close()
		}(c)
	}
	wg.Wait()
	if failed {
		os.Exit(1)
	}
}
