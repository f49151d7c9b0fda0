// A Go program for the function target tests (tests/apptrace/
// function_targets_test.cc): handlers found by glob, each with one or
// several returns. `handlers N` calls handleGetUser N times, each in a new
// goroutine at a stack depth from 0 to 255, so that some calls grow their
// stack in its prologue (the entry runs twice), for the test that counts
// uprobe hits at the resolved offsets.
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
)

type store struct{ users map[string]int }

//go:noinline
func handleGetUser(s *store, name string) (int, error) {
	if id, ok := s.users[name]; ok {
		return id, nil
	}
	if name == "" {
		return 0, fmt.Errorf("empty name")
	}
	return -1, fmt.Errorf("no user %q", name)
}

//go:noinline
func handleListUsers(s *store) []string {
	out := make([]string, 0, len(s.users))
	for name := range s.users {
		out = append(out, name)
	}
	return out
}

//go:noinline
func handlePutUser(s *store, name string, id int) bool {
	switch {
	case id < 0:
		return false
	case id > 1000:
		s.users[name] = 1000
		return true
	}
	s.users[name] = id
	return true
}

//go:noinline
func (s *store) handleMethod(n int) int { return len(s.users) + n }

//go:noinline
func deep(depth int, s *store) int {
	if depth == 0 {
		id, _ := handleGetUser(s, "bob")
		return id
	}
	return deep(depth-1, s) + 1
}

func main() {
	calls := 1
	if len(os.Args) > 1 {
		calls, _ = strconv.Atoi(os.Args[1])
	}
	s := &store{users: map[string]int{"ann": 1}}
	handlePutUser(s, "bob", 2)
	var wg sync.WaitGroup
	for i := 0; i < calls; i++ {
		wg.Add(1)
		go func(depth int) {
			defer wg.Done()
			deep(depth, s)
		}(i % 256)
	}
	wg.Wait()
	fmt.Println(handleListUsers(s), s.handleMethod(2))
}
