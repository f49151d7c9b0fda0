// What tests/apptrace/trace_program_test.cc traces in Go: handle() runs on
// many goroutines at once, sleeps (the goroutine parks and may resume on
// another thread), then sends BYTES on its own TCP connection. It waits for
// a line on stdin before it starts, so that the probes are in first.
//
//	go_target PORT GOROUTINES CALLS SLEEP_MS BYTES
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

func main() {
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
