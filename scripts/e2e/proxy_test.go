//go:build e2e

package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// ciscoHost is a name only the proxy knows: without it, the plugin cannot
// reach Cisco or STS at all.
const ciscoHost = "cisco.proxied.test"

// TestEgressThroughProxy: with HTTPS_PROXY in Vault's environment, as the
// operations guide sets it in Vault's systemd unit, the plugin reaches
// Cisco and STS through the proxy, and only through it: the name it calls
// resolves nowhere else.
func TestEgressThroughProxy(t *testing.T) {
	t.Parallel()
	plugins := pluginDir(t)
	s := startSim(t)

	// Cisco's side: TLS for ciscoHost, with a CA the test makes, in front
	// of the simulator.
	caPEM, cert := testCA(t, ciscoHost)
	simURL, err := url.Parse(s.url)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var tunnels, calls []string
	front := httputil.NewSingleHostReverseProxy(simURL)
	cisco := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.Method+" "+r.URL.Path)
		mu.Unlock()
		front.ServeHTTP(w, r)
	}))
	cisco.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	cisco.StartTLS()
	t.Cleanup(cisco.Close)

	// The forward proxy: CONNECT to ciscoHost:443 reaches the TLS front.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		tunnels = append(tunnels, r.Method+" "+r.Host)
		mu.Unlock()
		if r.Method != http.MethodConnect || r.Host != ciscoHost+":443" {
			http.Error(w, "this proxy reaches "+ciscoHost+":443 only", http.StatusForbidden)
			return
		}
		upstream, err := net.DialTimeout("tcp", cisco.Listener.Addr().String(), 5*time.Second)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusOK)
		client, rw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			upstream.Close()
			return
		}
		go func() { _, _ = io.Copy(upstream, rw); upstream.Close() }()
		_, _ = io.Copy(client, upstream)
		client.Close()
	}))
	t.Cleanup(proxy.Close)

	caFile := filepath.Join(t.TempDir(), "ca.pem")
	writeFile(t, caFile, string(caPEM))
	v := startDevVaultWith(t, plugins, []string{"HTTPS_PROXY=" + proxy.URL, "NO_PROXY=127.0.0.1,localhost", "SSL_CERT_FILE=" + caFile})
	v.enablePlugin(t, plugins)
	base := "https://" + ciscoHost
	v.must(t, "write", mountPrefix+"/config/acme", "provider=umbrella", "client_id="+simClient, "client_secret="+simSecret,
		"api_url="+base+"/admin/v2", "token_url="+base+"/auth/v2/token", "sts_url="+base)
	v.must(t, "write", "-f", mountPrefix+"/rotate/acme")
	v.assertServes(t, s, "acme", simOrg)
	if got := v.data(t, "write", "-f", mountPrefix+"/verify/acme"); got["result"] != "valid" {
		t.Fatalf("verify through the proxy: %v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	// Every call reached Cisco's side through a tunnel of the proxy: the
	// name resolves nowhere else. One kept-alive tunnel may carry them all.
	if len(tunnels) == 0 {
		t.Fatal("the proxy saw no tunnel")
	}
	for _, tunnel := range tunnels {
		if tunnel != "CONNECT "+ciscoHost+":443" {
			t.Fatalf("the proxy saw %q", tunnel)
		}
	}
	for _, want := range []string{"POST /auth/v2/token", "POST /admin/v2/iam/rotateKey", "POST /"} {
		if !slices.Contains(calls, want) {
			t.Fatalf("no %s reached Cisco's side through the proxy: %v", want, calls)
		}
	}
	t.Logf("%d tunnels through the proxy to %s carried %d calls", len(tunnels), ciscoHost, len(calls))
}

// testCA makes a CA and a certificate for host that it signed; it returns
// the CA in PEM and the certificate with its key.
func testCA(t *testing.T, host string) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e proxy test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}
}
