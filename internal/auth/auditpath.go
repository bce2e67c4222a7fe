package auth

import (
	"net/url"
	"regexp"
	"strings"
)

// maxPath bounds the path kept in an audit entry.
const maxPath = 1024

// redacted replaces a secret.
const redacted = "REDACTED"

// tokenRE finds zenne's own secrets anywhere: API keys (the id is kept,
// the secret goes) and setup tokens.
var tokenRE = regexp.MustCompile(`(zk_[a-z2-7]{12}_)[A-Za-z0-9_-]+|zs_[A-Za-z0-9_-]+`)

// SanitizePath makes a request path (with its query) fit for the audit log
// and logs: every query parameter whose name says it carries a credential
// (k, key, apikey, token, secret, password, signature, code…) has its value
// replaced by REDACTED, API key secrets and setup tokens are redacted
// wherever they appear, and the result is cut at 1,024 bytes.
func SanitizePath(p string) string {
	path, query, hasQuery := strings.Cut(p, "?")
	path = redactTokens(path)
	if hasQuery {
		parts := strings.Split(query, "&")
		for i, kv := range parts {
			name, _, hasValue := strings.Cut(kv, "=")
			if n, err := url.QueryUnescape(name); err == nil {
				name = n
			}
			if secretParam(name) {
				if hasValue {
					parts[i] = kv[:strings.IndexByte(kv, '=')] + "=" + redacted
				}
				continue
			}
			parts[i] = redactTokens(kv)
		}
		path += "?" + strings.Join(parts, "&")
	}
	if len(path) > maxPath {
		path = strings.ToValidUTF8(path[:maxPath], "") + "…"
	}
	return path
}

func redactTokens(s string) string {
	if !strings.Contains(s, "zk_") && !strings.Contains(s, "zs_") && !strings.Contains(s, "%") {
		return s
	}
	if u, err := url.PathUnescape(s); err == nil && u != s && tokenRE.MatchString(u) {
		s = u // a token hidden by percent-encoding
	}
	return tokenRE.ReplaceAllStringFunc(s, func(m string) string {
		if strings.HasPrefix(m, "zk_") {
			return m[:len(keyPrefix)+keyIDLen+1] + redacted
		}
		return "zs_" + redacted
	})
}

// secretParam reports whether a query parameter's name says it carries a
// credential.
func secretParam(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "k", "code", "sig", "signature", "auth", "pass", "pwd", "session", "sid", "jwt":
		return true
	}
	for _, s := range []string{"key", "token", "secret", "passw", "credential", "authoriz"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}
