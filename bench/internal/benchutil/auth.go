package benchutil

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/zenne-city/zenne/internal/auth"
)

// Every HTTP route of zenne wants credentials. A benchmark that starts
// zenne makes an administrator key with AdminKey, gives it to the server
// (ServerEnv in process, ProcessEnv to a child process), which registers it
// on the first start of a new store, and sends it with every request
// (WithKey). One that talks to a zenne running elsewhere takes -key
// (KeyFlag).

// EnvAPIKey is the environment variable of the API key sent to a running
// zenne: KeyFlag's default.
const EnvAPIKey = "ZENNE_API_KEY"

// AdminKey makes a new administrator key secret for a zenne the benchmark
// starts.
func AdminKey() string { return auth.NewKeySecret() }

// ServerEnv is app.Config.Env for an in-process zenne: it gives key as
// ZENNE_ADMIN_KEY, and nothing else of the environment.
func ServerEnv(key string) func(string) string {
	return func(name string) string {
		if name == auth.EnvAdminKey {
			return key
		}
		return ""
	}
}

// ProcessEnv is the environment of a `zenne serve` child process: env
// (nil: this process's) with ZENNE_ADMIN_KEY set to key.
func ProcessEnv(env []string, key string) []string {
	if env == nil {
		env = os.Environ()
	}
	return append(env[:len(env):len(env)], auth.EnvAdminKey+"="+key)
}

// ServerKey returns a key that the in-process zenne whose accounts svc
// keeps takes: key itself when it is registered (a new store registered
// it), else a new administrator key, valid for a day, for a store kept
// from an earlier run, whose administrator has that run's key.
func ServerKey(ctx context.Context, svc *auth.Service, key string) (string, error) {
	if _, err := svc.AuthenticateKey(ctx, key); err == nil {
		return key, nil
	}
	grants := []auth.Grant{{Tenant: auth.AllTenants, Role: auth.RoleAdmin}}
	k, _, err := svc.CreateKey(ctx, auth.AdminUser, "benchmark", grants, time.Now().Add(24*time.Hour))
	if errors.Is(err, auth.ErrNotFound) {
		return "", fmt.Errorf("the store holds accounts but no %q: use an empty data directory or database", auth.AdminUser)
	}
	if err != nil {
		return "", fmt.Errorf("an administrator key for the kept store: %w", err)
	}
	return k, nil
}

// KeyFlag defines -key, the API key sent to a zenne the benchmark does not
// start (default: $ZENNE_API_KEY, read when the flag is not given, so that
// -h does not print it).
func KeyFlag(fs *flag.FlagSet) func() string {
	k := fs.String("key", "", "API key sent as Authorization: Bearer to a running zenne (default: $"+EnvAPIKey+")")
	return func() string {
		if *k != "" {
			return *k
		}
		return os.Getenv(EnvAPIKey)
	}
}

// WithKey returns c sending key as "Authorization: Bearer <key>" with
// every request that has no Authorization header of its own (c itself
// when key is "").
func WithKey(c *http.Client, key string) *http.Client {
	if key == "" {
		return c
	}
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	out := *c
	out.Transport = auth.NewBearer(key, next)
	return &out
}
