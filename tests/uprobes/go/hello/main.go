// A Go program without crypto/tls: the analysis must say so.
package main

import "fmt"

func main() {
	fmt.Println("hello")
}
