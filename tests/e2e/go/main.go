// The Go side of the TLS end-to-end test (tests/e2e/test_tls.py), standard
// library only: `l7tlgo serve` is an HTTPS server (HTTP/1.1 and HTTP/2 by
// ALPN, and HTTP/1.1 in cleartext to compare) and `l7tlgo get` a client
// that sends its requests over one connection and prints what it saw, one
// JSON line per exchange, so that the test compares what the program saw
// with what l7tap reported.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
)

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "l7tlgo:", err)
		os.Exit(1)
	}
}

// GET /bytes?n=N answers N bytes (a pattern the test can check), a POST
// answers 201 with the length it read, anything else 404.
func handle(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	switch {
	case r.Method == http.MethodPost:
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "%d\n", len(body))
	case r.URL.Path == "/bytes":
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n < 0 {
			http.Error(w, "bad n", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(pattern(n))
	default:
		http.Error(w, "none", http.StatusNotFound)
	}
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

func serve(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	cert := fs.String("cert", "", "certificate (PEM)")
	key := fs.String("key", "", "key (PEM)")
	addr := fs.String("addr", "", "address to listen on")
	clear := fs.String("clear", "", "address to serve the same in cleartext (HTTP/1.1) too")
	check(fs.Parse(args))
	pair, err := tls.LoadX509KeyPair(*cert, *key)
	check(err)
	listener, err := net.Listen("tcp", *addr)
	check(err)
	server := &http.Server{
		Handler:   http.HandlerFunc(handle),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}, NextProtos: []string{"h2", "http/1.1"}},
	}
	if *clear != "" {
		plain, err := net.Listen("tcp", *clear)
		check(err)
		go func() { check(http.Serve(plain, http.HandlerFunc(handle))) }()
	}
	fmt.Println("listening")
	check(server.ServeTLS(listener, "", ""))
}

type exchange struct {
	Method  string `json:"method"`
	Target  string `json:"target"`
	Status  int    `json:"status"`
	Body    int    `json:"body"`
	Sha256  string `json:"sha256"`
	Sent    int    `json:"sent"`
	Port    int    `json:"port"`
	Version string `json:"version"`
	Conns   int32  `json:"conns"`
}

// Each argument is METHOD URL [BODY-SIZE]; all go over one connection (the
// transport keeps it alive), whose local port each line carries.
func get(args []string) {
	fs := flag.NewFlagSet("get", flag.ExitOnError)
	ca := fs.String("ca", "", "CA certificate (PEM)")
	h2 := fs.Bool("h2", false, "offer h2 by ALPN (else HTTP/1.1 only)")
	wait := fs.Bool("wait", false, "read a line from standard input first (l7tap starts meanwhile)")
	check(fs.Parse(args))
	if *wait {
		fmt.Println("waiting")
		_, err := bufio.NewReader(os.Stdin).ReadString('\n')
		check(err)
	}
	pem, err := os.ReadFile(*ca)
	check(err)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		check(fmt.Errorf("%s: no certificate", *ca))
	}
	var port, conns int32
	dialer := &net.Dialer{}
	transport := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: *h2,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err == nil {
				atomic.AddInt32(&conns, 1)
				atomic.StoreInt32(&port, int32(c.LocalAddr().(*net.TCPAddr).Port))
			}
			return c, err
		},
	}
	if !*h2 {
		transport.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	client := &http.Client{Transport: transport}
	out := json.NewEncoder(os.Stdout)
	for _, spec := range fs.Args() {
		f := strings.Fields(spec)
		method, url := f[0], f[1]
		sent := 0
		if len(f) > 2 {
			sent, err = strconv.Atoi(f[2])
			check(err)
		}
		var body io.Reader
		if method == http.MethodPost {
			body = bytes.NewReader(bytes.Repeat([]byte("z"), sent))
		}
		req, err := http.NewRequest(method, url, body)
		check(err)
		resp, err := client.Do(req)
		check(err)
		data, err := io.ReadAll(resp.Body)
		check(err)
		resp.Body.Close()
		sum := sha256.Sum256(data)
		version := strconv.Itoa(resp.ProtoMajor)
		if resp.ProtoMajor == 1 {
			version = fmt.Sprintf("1.%d", resp.ProtoMinor)
		}
		check(out.Encode(exchange{method, "/" + strings.SplitN(url, "/", 4)[3], resp.StatusCode,
			len(data), hex.EncodeToString(sum[:]), sent, int(atomic.LoadInt32(&port)), version,
			atomic.LoadInt32(&conns)}))
	}
	transport.CloseIdleConnections()
}

func main() {
	if len(os.Args) < 2 {
		check(fmt.Errorf("usage: l7tlgo serve|get ..."))
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2:])
	case "get":
		get(os.Args[2:])
	default:
		check(fmt.Errorf("%s: neither serve nor get", os.Args[1]))
	}
}
