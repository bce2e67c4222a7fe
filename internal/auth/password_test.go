package auth

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestDefaultPasswordParams(t *testing.T) {
	h, err := hashPassword(goodPW, DefaultPasswordParams())
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !re.MatchString(h) {
		t.Fatalf("hash %q is not the PHC string of argon2id m=19 MiB, t=2, p=1", h)
	}
	ok, rehash, err := verifyPassword(h, goodPW, DefaultPasswordParams())
	if !ok || rehash || err != nil {
		t.Errorf("verify = %v, %v, %v", ok, rehash, err)
	}
}

func TestPHCRoundTrip(t *testing.T) {
	h, err := hashPassword(goodPW, fastPasswords)
	if err != nil {
		t.Fatal(err)
	}
	x, err := parsePHC(h)
	if err != nil {
		t.Fatal(err)
	}
	if x.params != fastPasswords || len(x.salt) != saltLen || len(x.hash) != hashLen {
		t.Errorf("parsed %+v", x)
	}
	if got := formatPHC(x); got != h {
		t.Errorf("format(parse(h)) = %q, want %q", got, h)
	}
	h2, _ := hashPassword(goodPW, fastPasswords)
	if h2 == h {
		t.Error("two hashes of one password are equal: no salt?")
	}
	cases := []struct {
		name, pw string
		params   PasswordParams
		ok       bool
		rehash   bool
	}{
		{"right", goodPW, fastPasswords, true, false},
		{"wrong", goodPW + "!", fastPasswords, false, false},
		{"empty", "", fastPasswords, false, false},
		{"prefix", goodPW[:len(goodPW)-1], fastPasswords, false, false},
		{"right, new parameters", goodPW, PasswordParams{Memory: 128, Time: 1, Threads: 1}, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ok, rehash, err := verifyPassword(h, tc.pw, tc.params)
			if err != nil || ok != tc.ok || rehash != tc.rehash {
				t.Errorf("verify = %v, %v, %v; want %v, %v", ok, rehash, err, tc.ok, tc.rehash)
			}
		})
	}
}

func TestParsePHCRefuses(t *testing.T) {
	good := "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
	if _, err := parsePHC(good); err != nil {
		t.Fatalf("the good one: %v", err)
	}
	bad := map[string]string{
		"empty":             "",
		"argon2i":           strings.Replace(good, "argon2id", "argon2i", 1),
		"bcrypt":            "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"version 16":        strings.Replace(good, "v=19", "v=16", 1),
		"no version":        "$argon2id$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
		"parameters order":  strings.Replace(good, "m=64,t=1,p=1", "t=1,m=64,p=1", 1),
		"leading zero":      strings.Replace(good, "m=64", "m=064", 1),
		"negative":          strings.Replace(good, "t=1", "t=-1", 1),
		"zero time":         strings.Replace(good, "t=1", "t=0", 1),
		"zero lanes":        strings.Replace(good, "p=1", "p=0", 1),
		"256 lanes":         strings.Replace(good, "p=1", "p=256", 1),
		"memory too small":  strings.Replace(good, "m=64", "m=4", 1),
		"memory of 4 GiB":   strings.Replace(good, "m=64", "m=4194304", 1),
		"time too long":     strings.Replace(good, "t=1", "t=1000", 1),
		"padded salt":       strings.Replace(good, "c2FsdHNhbHRzYWx0c2FsdA", "c2FsdHNhbHRzYWx0c2FsdA==", 1),
		"salt too short":    strings.Replace(good, "c2FsdHNhbHRzYWx0c2FsdA", "c2FsdA", 1),
		"url-safe base64":   strings.Replace(good, "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2_", 1),
		"hash too short":    strings.Replace(good, "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", "aGFzaA", 1),
		"trailing field":    good + "$x",
		"no leading dollar": good[1:],
		"spaces":            strings.Replace(good, "m=64", "m= 64", 1),
	}
	for name, s := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := parsePHC(s); !errors.Is(err, ErrInvalid) {
				t.Errorf("parsePHC(%q) = %v, want ErrInvalid", s, err)
			}
		})
	}
}

func TestCheckPassword(t *testing.T) {
	for _, pw := range []string{"", "short", strings.Repeat("x", MinPasswordLen-1), "with a\nnewline inside", strings.Repeat("x", MaxPasswordLen+1)} {
		if err := checkPassword(pw); !errors.Is(err, ErrInvalid) {
			t.Errorf("checkPassword(%q) = %v", clip(pw, 20), err)
		}
	}
	for _, pw := range []string{goodPW, "ééééééééééééé", "with:colon and spaces"} {
		if err := checkPassword(pw); err != nil {
			t.Errorf("checkPassword(%q) = %v", pw, err)
		}
	}
}

func FuzzParsePHC(f *testing.F) {
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g")
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2id$v=19$m=1048576,t=64,p=255$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2i$v=19$m=64,t=1,p=1$$")
	f.Add("$$$$$")
	f.Fuzz(func(t *testing.T, s string) {
		x, err := parsePHC(s)
		if err != nil {
			return
		}
		if !x.params.valid() || len(x.salt) < minSaltLen || len(x.hash) < minHashLen || x.params.Memory > maxMemory {
			t.Fatalf("accepted %q: %+v", s, x)
		}
		// What parses formats back to itself: one spelling per hash.
		if got := formatPHC(x); got != s {
			t.Fatalf("parse(%q) formats as %q", s, got)
		}
	})
}
