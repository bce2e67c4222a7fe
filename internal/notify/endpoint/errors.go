package endpoint

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// netFailure describes a failure of the network or of the exchange: its
// reason in a few words, whether a later attempt may succeed, and the
// sentinel error the *Error unwraps to. secrets are removed from any text
// taken from err.
func netFailure(err error, secrets ...string) (reason string, temporary bool, sentinel error) {
	var (
		dnsErr  *net.DNSError
		certErr *tls.CertificateVerificationError
		uaErr   x509.UnknownAuthorityError
		hostErr x509.HostnameError
		invErr  x509.CertificateInvalidError
		recErr  tls.RecordHeaderError
		alert   tls.AlertError
		netErr  net.Error
	)
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled", true, context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout", true, context.DeadlineExceeded
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused", true, syscall.ECONNREFUSED
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return "connection closed by the peer", true, nil
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable", true, syscall.EHOSTUNREACH
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "unknown host " + dnsErr.Name, false, nil
		}
		return "DNS lookup of " + dnsErr.Name + " failed", true, nil
	case errors.As(err, &certErr):
		return "TLS certificate not accepted: " + scrub(certErr.Err.Error(), secrets), false, nil
	case errors.As(err, &uaErr), errors.As(err, &hostErr), errors.As(err, &invErr):
		return "TLS certificate not accepted: " + scrub(err.Error(), secrets), false, nil
	case errors.As(err, &recErr):
		return "TLS handshake failed: the peer does not speak TLS", false, nil
	case errors.As(err, &alert):
		return "TLS handshake failed: " + alert.Error(), false, nil
	case errors.As(err, &netErr) && netErr.Timeout():
		return "timeout", true, context.DeadlineExceeded
	}
	var ue *url.Error
	if errors.As(err, &ue) { // net/http's wrapper holds the URL
		err = ue.Err
	}
	msg := err.Error()
	if strings.Contains(msg, "server gave HTTP response to HTTPS client") { // net/http's error is unexported
		return "TLS handshake failed: the peer does not speak TLS", false, nil
	}
	return scrub(msg, secrets), true, nil
}

// scrub removes secrets from s.
func scrub(s string, secrets []string) string {
	for _, x := range secrets {
		if len(x) >= 3 { // shorter ones would blank out ordinary words; they are no secret worth the name
			s = strings.ReplaceAll(s, x, "xxxxx")
		}
	}
	return s
}

// elapsed rounds a duration for a human.
func elapsed(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	default:
		return d.Round(time.Millisecond)
	}
}

// failure builds the *Error for err, which happened while doing what (as
// in "connect to 127.0.0.1:1883"). A timeout says how long it waited: since
// start.
func failure(what string, err error, start time.Time, secrets ...string) *Error {
	reason, temp, sentinel := netFailure(err, secrets...)
	if sentinel == context.DeadlineExceeded {
		reason = fmt.Sprintf("timeout after %v", elapsed(time.Since(start)))
	}
	return &Error{Cause: what + ": " + reason, Temporary: temp, err: sentinel}
}
