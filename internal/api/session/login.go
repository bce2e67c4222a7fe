package session

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zenne-city/zenne/internal/api/access"
	"github.com/zenne-city/zenne/internal/auth"
)

// page is what the login page shows.
type page struct {
	Lang   string
	T      *texts
	Static string
	Langs  []langLink
	// CSRF is the login form's token; Next where a login leads.
	CSRF, Next string
	// User is the name typed (never the password).
	User string
	// Error is about the whole form; CredentialsError tells that it is
	// about the name and password (both fields then point to it).
	Error            string
	CredentialsError bool
	// UserError and PasswordError are about one field.
	UserError, PasswordError string
	FocusUser, FocusPassword bool
	// OIDCURL starts single sign-on ("": not configured).
	OIDCURL string
	// LoggedIn is the user of the browser's session, if any, with the
	// session's CSRF token for the logout button.
	LoggedIn, SessionCSRF string
}

type langLink struct {
	Code, Name, URL string
	Current         bool
}

// newPage prepares the login page in lang, with the form's CSRF token
// (setting its cookie when the browser has none).
func (h *Handler) newPage(w http.ResponseWriter, r *http.Request, lang, next string) *page {
	pg := &page{Lang: lang, T: languages[lang], Static: staticPath, Next: next, CSRF: h.loginCSRF(w, r)}
	for _, l := range langOrder {
		pg.Langs = append(pg.Langs, langLink{Code: l, Name: languages[l].Name, URL: pageURL(LoginPath, l, next), Current: l == lang})
	}
	if h.oidc != nil {
		pg.OIDCURL = pageURL(oidcPath, lang, next)
	}
	return pg
}

// render writes the login page with status.
func (h *Handler) render(w http.ResponseWriter, pg *page, status int) {
	var b bytes.Buffer
	if err := h.page.Execute(&b, pg); err != nil {
		h.log.Error("rendering the login page", "err", err, "request_id", w.Header().Get("X-Request-Id"))
		http.Error(w, "the login page could not be shown", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Language", pg.Lang)
	hd.Set("Cache-Control", "no-store")
	hd.Set("Vary", "Accept-Language, Cookie")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// loginPage answers GET /login: the form, and who is logged in already.
func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	pg := h.newPage(w, r, pickLang(r, ""), SafeNext(r.URL.Query().Get("next")))
	if sess := sessionFrom(r.Context()); sess != nil {
		pg.LoggedIn, pg.SessionCSRF = access.PrincipalFrom(r.Context()).User(), sess.CSRFToken()
	} else if _, ok := r.Header["Authorization"]; !ok && cookieValue(r, CookieName) != "" {
		h.clearSession(w, r) // stale
	}
	pg.FocusUser = true
	h.render(w, pg, http.StatusOK)
}

// login answers POST /login: a session and a redirection to the next path
// when the name and password hold; the form again, saying what to do,
// otherwise.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		h.record(r, nil, http.StatusBadRequest, "login")
		http.Error(w, "the login form could not be read: "+err.Error(), http.StatusBadRequest)
		return
	}
	lang := pickLang(r, "")
	t := languages[lang]
	pg := h.newPage(w, r, lang, SafeNext(r.PostForm.Get("next")))
	name := strings.ToLower(strings.TrimSpace(r.PostForm.Get("user"))) // account names are lower-case
	password := r.PostForm.Get("password")
	if len(name) <= 256 {
		pg.User = name
	}
	fail := func(status int) {
		h.record(r, nil, status, "login")
		h.render(w, pg, status)
	}
	if !checkLoginCSRF(r) {
		// A form from before the cookie expired (or from another site):
		// the page comes again, with a token that works.
		pg.Error, pg.FocusPassword = t.FormExpired, true
		fail(http.StatusForbidden)
		return
	}
	if name == "" || password == "" {
		if name == "" {
			pg.UserError, pg.FocusUser = t.NeedUser, true
		}
		if password == "" {
			pg.PasswordError, pg.FocusPassword = t.NeedPassword, name != ""
		}
		fail(http.StatusBadRequest)
		return
	}
	p, err := h.auth.Login(r.Context(), name, password, auth.RemoteHost(r))
	var re *auth.RetryError
	switch {
	case err == nil:
	case errors.As(err, &re):
		w.Header().Set("Retry-After", strconv.Itoa(int((re.RetryAfter+time.Second-1)/time.Second)))
		msg := t.Throttled
		if errors.Is(err, auth.ErrLocked) {
			msg = t.Locked
		}
		pg.Error = fmt.Sprintf(msg, t.wait(re.RetryAfter))
		fail(http.StatusTooManyRequests)
		return
	case errors.Is(err, auth.ErrBadCredentials):
		pg.Error, pg.CredentialsError, pg.FocusPassword = t.BadCredentials, true, true
		fail(http.StatusUnauthorized)
		return
	case errors.Is(err, auth.ErrDisabled):
		pg.Error = t.Disabled
		fail(http.StatusForbidden)
		return
	default:
		h.log.Error("checking a password", "err", err, "request_id", w.Header().Get("X-Request-Id"))
		pg.Error = t.ServerError
		fail(http.StatusInternalServerError)
		return
	}
	id, _, err := h.sessions.Start(r.Context(), p, auth.MethodPassword)
	if err != nil {
		h.log.Error("starting a console session", "err", err, "user", p.User(), "request_id", w.Header().Get("X-Request-Id"))
		pg.Error = t.ServerError
		fail(http.StatusInternalServerError)
		return
	}
	h.loggedIn(w, r, p, id, pg.Next)
}

// loggedIn ends the browser's previous session, if any, sets the cookie of
// the new one and leads to next.
func (h *Handler) loggedIn(w http.ResponseWriter, r *http.Request, p *auth.Principal, id, next string) {
	if old := cookieValue(r, CookieName); old != "" && old != id {
		if err := h.sessions.End(r.Context(), old); err != nil {
			h.log.Warn("ending the previous console session", "err", err)
		}
	}
	h.setSession(w, r, id)
	h.setCookie(w, r, CSRFCookie, "", LoginPath, -1, http.SameSiteStrictMode)
	h.record(r, p, http.StatusSeeOther, "login")
	if next == "" {
		next = home
	}
	redirect(w, next)
}
