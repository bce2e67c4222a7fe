package session

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The login pages speak Dutch, French and English: the two languages of
// the Brussels-Capital Region, and English for everyone else.
const defaultLang = "en"

// texts are the words of the login pages in one language. Messages with
// %s or %d take the values named beside them.
type texts struct {
	Name, Title, Heading, LoggedInAs, Logout, User, Password, Submit, Or, OIDC, Languages string

	NeedUser, NeedPassword, BadCredentials, Disabled string
	Locked, Throttled                                string // %s: how long to wait
	FormExpired, ServerError                         string
	OIDCUnavailable, OIDCFailed, OIDCExpired         string
	OIDCNoName                                       string // %s: the claim
	OIDCUnknown                                      string // %s: the account name
	OIDCDenied                                       string // %s: the provider's error code

	Minutes, Seconds string // %d
}

var languages = map[string]*texts{
	"en": {
		Name: "English", Title: "Log in", Heading: "Log in to zenne", LoggedInAs: "You are logged in as %s.", Logout: "Log out",
		User: "User name", Password: "Password", Submit: "Log in", Or: "or", OIDC: "Log in with single sign-on",
		Languages:      "Language",
		NeedUser:       "Enter your user name.",
		NeedPassword:   "Enter your password.",
		BadCredentials: "The user name or the password is wrong. Check both and try again: after several failed attempts the account is locked for a while.",
		Disabled:       "This account is disabled. Ask an administrator to enable it again.",
		Locked:         "Too many failed attempts: this account is locked. Try again in %s, or ask an administrator to unlock it.",
		Throttled:      "Too many login attempts from your address. Wait %s, then try again.",
		FormExpired:    "The form had expired and has been renewed. Enter your password again.",
		ServerError:    "Something went wrong on our side. Try again in a moment; if it keeps failing, tell an administrator.",
		OIDCUnavailable: "Single sign-on is unavailable: the identity provider cannot be reached. Try again in a minute, " +
			"or log in with your user name and password.",
		OIDCFailed:  "The identity provider did not confirm your login. Start again; if it fails again, tell an administrator.",
		OIDCExpired: "The single sign-on took too long or was started in another window. Start again.",
		OIDCNoName:  "The identity provider did not give your user name (claim %s). Ask an administrator to check the single sign-on settings.",
		OIDCUnknown: "There is no zenne account %[1]s. Ask an administrator to create the account %[1]s, then log in again.",
		OIDCDenied:  "The identity provider refused the login (%s). Start again, or log in with your user name and password.",
		Minutes:     "%d minutes", Seconds: "%d seconds",
	},
	"nl": {
		Name: "Nederlands", Title: "Aanmelden", Heading: "Aanmelden bij zenne", LoggedInAs: "U bent aangemeld als %s.", Logout: "Afmelden",
		User: "Gebruikersnaam", Password: "Wachtwoord", Submit: "Aanmelden", Or: "of", OIDC: "Aanmelden met single sign-on",
		Languages:      "Taal",
		NeedUser:       "Vul uw gebruikersnaam in.",
		NeedPassword:   "Vul uw wachtwoord in.",
		BadCredentials: "De gebruikersnaam of het wachtwoord is onjuist. Controleer beide en probeer opnieuw: na enkele mislukte pogingen wordt het account een tijd vergrendeld.",
		Disabled:       "Dit account is uitgeschakeld. Vraag een beheerder om het opnieuw in te schakelen.",
		Locked:         "Te veel mislukte pogingen: dit account is vergrendeld. Probeer opnieuw over %s, of vraag een beheerder om het te ontgrendelen.",
		Throttled:      "Te veel aanmeldpogingen vanaf uw adres. Wacht %s en probeer dan opnieuw.",
		FormExpired:    "Het formulier was verlopen en is vernieuwd. Vul uw wachtwoord opnieuw in.",
		ServerError:    "Er ging bij ons iets mis. Probeer het zo opnieuw; lukt het blijvend niet, verwittig dan een beheerder.",
		OIDCUnavailable: "Single sign-on is niet beschikbaar: de identiteitsprovider is onbereikbaar. Probeer het over een minuut opnieuw, " +
			"of meld u aan met uw gebruikersnaam en wachtwoord.",
		OIDCFailed:  "De identiteitsprovider heeft uw aanmelding niet bevestigd. Begin opnieuw; lukt het weer niet, verwittig dan een beheerder.",
		OIDCExpired: "De single sign-on duurde te lang of werd in een ander venster gestart. Begin opnieuw.",
		OIDCNoName:  "De identiteitsprovider gaf uw gebruikersnaam niet door (claim %s). Vraag een beheerder om de instellingen van single sign-on na te kijken.",
		OIDCUnknown: "Er bestaat geen zenne-account %[1]s. Vraag een beheerder om het account %[1]s aan te maken en meld u daarna opnieuw aan.",
		OIDCDenied:  "De identiteitsprovider weigerde de aanmelding (%s). Begin opnieuw, of meld u aan met uw gebruikersnaam en wachtwoord.",
		Minutes:     "%d minuten", Seconds: "%d seconden",
	},
	"fr": {
		Name: "Français", Title: "Connexion", Heading: "Connexion à zenne", LoggedInAs: "Session ouverte au nom de %s.", Logout: "Se déconnecter",
		User: "Nom d'utilisateur", Password: "Mot de passe", Submit: "Se connecter", Or: "ou", OIDC: "Se connecter par authentification unique",
		Languages:      "Langue",
		NeedUser:       "Saisissez votre nom d'utilisateur.",
		NeedPassword:   "Saisissez votre mot de passe.",
		BadCredentials: "Le nom d'utilisateur ou le mot de passe est incorrect. Vérifiez-les et réessayez : après plusieurs échecs, le compte est bloqué pendant un moment.",
		Disabled:       "Ce compte est désactivé. Demandez à un administrateur de le réactiver.",
		Locked:         "Trop de tentatives échouées : ce compte est bloqué. Réessayez dans %s, ou demandez à un administrateur de le débloquer.",
		Throttled:      "Trop de tentatives de connexion depuis votre adresse. Attendez %s, puis réessayez.",
		FormExpired:    "Le formulaire avait expiré et a été renouvelé. Saisissez à nouveau votre mot de passe.",
		ServerError:    "Un problème est survenu de notre côté. Réessayez dans un instant ; si cela persiste, prévenez un administrateur.",
		OIDCUnavailable: "L'authentification unique est indisponible : le fournisseur d'identité est injoignable. Réessayez dans une minute, " +
			"ou connectez-vous avec votre nom d'utilisateur et votre mot de passe.",
		OIDCFailed:  "Le fournisseur d'identité n'a pas confirmé votre connexion. Recommencez ; en cas de nouvel échec, prévenez un administrateur.",
		OIDCExpired: "L'authentification unique a pris trop de temps ou a été lancée dans une autre fenêtre. Recommencez.",
		OIDCNoName:  "Le fournisseur d'identité n'a pas transmis votre nom d'utilisateur (claim %s). Demandez à un administrateur de vérifier les réglages de l'authentification unique.",
		OIDCUnknown: "Il n'existe pas de compte zenne %[1]s. Demandez à un administrateur de créer le compte %[1]s, puis reconnectez-vous.",
		OIDCDenied:  "Le fournisseur d'identité a refusé la connexion (%s). Recommencez, ou connectez-vous avec votre nom d'utilisateur et votre mot de passe.",
		Minutes:     "%d minutes", Seconds: "%d secondes",
	},
}

// langOrder is the order of the language links.
var langOrder = []string{"nl", "fr", "en"}

// wait says how long d is, rounded up, in minutes from two minutes on.
func (t *texts) wait(d time.Duration) string {
	if d < 2*time.Minute {
		return fmt.Sprintf(t.Seconds, int((d+time.Second-1)/time.Second))
	}
	return fmt.Sprintf(t.Minutes, int((d+time.Minute-1)/time.Minute))
}

// pickLang chooses the language of a page: ?lang= (or the form's lang
// field), then the browser's Accept-Language, then English.
func pickLang(r *http.Request, fallback string) string {
	if l := strings.ToLower(r.URL.Query().Get("lang")); languages[l] != nil {
		return l
	}
	if r.Method == http.MethodPost && r.PostForm != nil {
		if l := strings.ToLower(r.PostForm.Get("lang")); languages[l] != nil {
			return l
		}
	}
	if languages[fallback] != nil {
		return fallback
	}
	return acceptLanguage(r.Header.Get("Accept-Language"))
}

// acceptLanguage picks the language an Accept-Language header prefers
// most among those of the pages (RFC 9110: "fr-BE, nl;q=0.8, en;q=0.5").
func acceptLanguage(h string) string {
	best, bestQ := defaultLang, 0.0
	if len(h) > 512 {
		h = h[:512]
	}
	for _, part := range strings.Split(h, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if k, v, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.TrimSpace(k) == "q" {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || f < 0 || f > 1 {
				continue
			}
			q = f
		}
		primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		if languages[primary] != nil && q > bestQ {
			best, bestQ = primary, q
		}
	}
	return best
}
