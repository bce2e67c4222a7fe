package store

import (
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
)

// retryable is a driver error like pgconn's: the request was not sent.
type retryable struct{ safe bool }

func (e retryable) Error() string     { return "conn closed" }
func (e retryable) SafeToRetry() bool { return e.safe }

func TestIsUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{ErrUnavailable, true},
		{fmt.Errorf("postgres: begin: %w", ErrUnavailable), true},
		{fmt.Errorf("query: %w", &net.OpError{Op: "dial", Err: errors.New("connection refused")}), true},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{fmt.Errorf("postgres: get urn:a: %w", retryable{safe: true}), true},
		{fmt.Errorf("postgres: get urn:a: %w", retryable{safe: false}), false},
		{ErrNotFound, false},
		{errors.New("syntax error"), false},
		{nil, false},
	} {
		if got := IsUnavailable(tc.err); got != tc.want {
			t.Errorf("IsUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
