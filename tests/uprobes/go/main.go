// A TLS server and client in one program, standard library only, for the
// Go crypto/tls uprobe tests: `tlspair -requests N` serves HTTP/1.1 and
// HTTP/2 (ALPN) on loopback with a certificate made at start, sends N
// requests over each protocol, and prints one line per exchange, so a test
// can compare what the program saw with what the probes saw, and that the
// probes changed nothing.
package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
)

func certificate() (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	check(err)
	template := x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "tlspair.test"},
		DNSNames:     []string{"tlspair.test"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, &template, &template, &key.PublicKey, key)
	check(err)
	leaf, err := x509.ParseCertificate(der)
	check(err)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "tlspair:", err)
		os.Exit(1)
	}
}

func main() {
	requests := flag.Int("requests", 3, "requests per protocol")
	bodySize := flag.Int("body", 100, "bytes of each POST body")
	addr := flag.String("listen", "127.0.0.1:0", "server address")
	gcEvery := flag.Duration("gc-every", 0, "run the garbage collector this often meanwhile")
	flag.Parse()

	// A collection walks every goroutine's stack, return addresses included,
	// and shrinks (copies) stacks: a uretprobe's rewritten return address in
	// a goroutine parked inside (*tls.Conn).Read makes that walk fail.
	done := make(chan struct{})
	defer close(done)
	if *gcEvery > 0 {
		go func() {
			ticker := time.NewTicker(*gcEvery)
			defer ticker.Stop()
			for {
				select {
				case <-done:
					return
				case <-ticker.C:
					runtime.GC()
				}
			}
		}()
	}

	cert, pool := certificate()
	listener, err := net.Listen("tcp", *addr)
	check(err)
	// Every server connection is closed by the server itself before the
	// program ends, so each TLS session ends with its own Close.
	var open sync.WaitGroup
	server := &http.Server{
		ConnState: func(_ net.Conn, state http.ConnState) {
			switch state {
			case http.StateNew:
				open.Add(1)
			case http.StateClosed, http.StateHijacked:
				open.Done()
			}
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprintf(w, "%s %s %s %d\n", r.Proto, r.Method, r.URL.Path, len(body))
		}),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}},
	}
	go server.ServeTLS(listener, "", "")

	url := "https://" + listener.Addr().String()
	for _, h2 := range []bool{false, true} {
		transport := &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool},
			ForceAttemptHTTP2: h2,
		}
		if !h2 {
			transport.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		client := &http.Client{Transport: transport}
		for i := 0; i < *requests; i++ {
			path := fmt.Sprintf("/l7tg/%d", i)
			response, err := client.Post(url+path, "text/plain",
				bytes.NewReader([]byte(strings.Repeat("x", *bodySize))))
			check(err)
			body, err := io.ReadAll(response.Body)
			check(err)
			response.Body.Close()
			fmt.Printf("%s %d %s", response.Proto, response.StatusCode, body)
		}
		transport.CloseIdleConnections()
	}
	open.Wait()
	server.Close()
}
