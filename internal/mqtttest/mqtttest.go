// Package mqtttest gives tests what the MQTT tests of several packages
// share: the machine's broker (Mosquitto, ZENNE_TEST_MQTT, default
// 127.0.0.1:1883, anonymous access) and a self-signed certificate for a TLS
// broker. Without a broker the tests fail, unless ZENNE_TEST_NO_MQTT=1 says
// to skip them.
package mqtttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// Skip skips the test with ZENNE_TEST_NO_MQTT=1, and fails it otherwise:
// an MQTT test needs a broker (or Mosquitto, for tests that run their own).
func Skip(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("ZENNE_TEST_NO_MQTT") == "1" {
		t.Skipf("ZENNE_TEST_NO_MQTT=1: %s", why)
	}
	t.Fatalf("%s (set ZENNE_TEST_NO_MQTT=1 to skip the MQTT tests)", why)
}

// Broker returns the host:port of the machine's broker, after checking it
// answers.
func Broker(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("ZENNE_TEST_MQTT")
	if addr == "" {
		addr = "127.0.0.1:1883"
	}
	if _, rest, ok := strings.Cut(addr, "://"); ok {
		addr = rest
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		Skip(t, fmt.Sprintf("no MQTT broker at %s: %v", addr, err))
	}
	c.Close()
	return addr
}

// Cert is a self-signed certificate for 127.0.0.1 and localhost.
type Cert struct {
	Pair            tls.Certificate
	CertPEM, KeyPEM []byte
	Pool            *x509.CertPool // trusts the certificate
}

// NewCert makes a certificate valid for an hour.
func NewCert(t testing.TB) *Cert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "zenne test broker"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := &Cert{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		Pool:    x509.NewCertPool(),
	}
	c.Pool.AddCert(cert)
	if c.Pair, err = tls.X509KeyPair(c.CertPEM, c.KeyPEM); err != nil {
		t.Fatal(err)
	}
	return c
}
