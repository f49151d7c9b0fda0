// A Go program for the function target tests (tests/apptrace/
// function_targets_test.cc): handlers found by glob, each with one or
// several returns. The test reads the file; it never runs it.
package main

import (
	"fmt"
	"os"
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

func main() {
	s := &store{users: map[string]int{"ann": 1}}
	handlePutUser(s, "bob", len(os.Args))
	id, err := handleGetUser(s, "bob")
	fmt.Println(id, err, handleListUsers(s), s.handleMethod(2))
}
