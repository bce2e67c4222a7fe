package session

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// maxNext bounds the length of a return path.
const maxNext = 2048

// SafeNext returns next if it is a path on this server to return to after
// a login, and "" otherwise. Only a plain local path is taken: it starts
// with one '/', holds no backslash, no control character and no white
// space (browsers drop tabs and newlines, and read '\' as '/', which would
// turn "/\evil.example" or "/\t/evil.example" into another host), and has
// neither scheme nor host. So nobody can make the login page send a user
// to a site of theirs (an open redirect). The login pages themselves are
// refused too, so that a login never leads back to the login.
func SafeNext(next string) string {
	if next == "" || len(next) > maxNext || next[0] != '/' || strings.HasPrefix(next, "//") {
		return ""
	}
	for i := 0; i < len(next); i++ {
		if c := next[i]; c <= ' ' || c == 0x7f || c == '\\' {
			return ""
		}
	}
	if !utf8.ValidString(next) {
		return ""
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
		return ""
	}
	if p := strings.ToLower(u.Path); p == LoginPath || strings.HasPrefix(p, LoginPath+"/") || p == LogoutPath {
		return ""
	}
	return next
}
