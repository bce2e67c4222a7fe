package qlang

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// Limits shared by the three languages.
const (
	maxLen   = 8 << 10 // bytes of input
	maxDepth = 64      // nested parentheses
)

// scanner holds what the three recursive-descent parsers share: the input, the
// position, the nesting depth and how errors are reported.
type scanner struct {
	s     string
	i     int
	depth int
	lang  string // "q", "scopeQ" or "type": prefixes error details
}

// errf reports an error; positions in details are 1-based byte offsets.
func (p *scanner) errf(format string, args ...any) error {
	return ngsild.Errorf(ngsild.BadRequestData, p.lang+": "+format, args...)
}

// unexpected reports what was found at the current position and what was wanted.
func (p *scanner) unexpected(want string) error {
	if p.i >= len(p.s) {
		return p.errf("unexpected end of input at position %d, expected %s", p.i+1, want)
	}
	r, _ := utf8.DecodeRuneInString(p.s[p.i:])
	return p.errf("unexpected %s at position %d, expected %s", quoteRune(r), p.i+1, want)
}

func quoteRune(r rune) string {
	if r == utf8.RuneError {
		return "invalid UTF-8"
	}
	return strconv.QuoteRune(r)
}

func (p *scanner) check() error {
	if len(p.s) > maxLen {
		return p.errf("expression longer than %d bytes", maxLen)
	}
	if strings.Trim(p.s, " \t\r\n") == "" {
		return p.errf("empty expression")
	}
	return nil
}

func (p *scanner) skipSpace() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *scanner) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *scanner) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return p.errf("parentheses nested deeper than %d at position %d", maxDepth, p.i+1)
	}
	return nil
}

// quotedString reads a "..." literal at p.i with JSON-style escapes.
func (p *scanner) quotedString() (string, error) {
	start := p.i
	p.i++ // opening quote
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch c {
		case '"':
			p.i++
			return b.String(), nil
		case '\\':
			if p.i+1 >= len(p.s) {
				return "", p.errf("unterminated string starting at position %d", start+1)
			}
			e := p.s[p.i+1]
			p.i += 2
			switch e {
			case '"', '\\', '/':
				b.WriteByte(e)
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				r, ok := p.hex4()
				if !ok {
					return "", p.errf("invalid \\u escape at position %d", p.i-1)
				}
				if utf16.IsSurrogate(r) && strings.HasPrefix(p.s[p.i:], "\\u") {
					save := p.i
					p.i += 2
					if r2, ok := p.hex4(); ok {
						r = utf16.DecodeRune(r, r2)
					} else {
						p.i = save
					}
				}
				b.WriteRune(r)
			default:
				return "", p.errf("invalid escape '\\%c' at position %d", e, p.i-1)
			}
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return "", p.errf("unterminated string starting at position %d", start+1)
}

func (p *scanner) hex4() (rune, bool) {
	if p.i+4 > len(p.s) {
		return 0, false
	}
	n, err := strconv.ParseUint(p.s[p.i:p.i+4], 16, 32)
	if err != nil {
		return 0, false
	}
	p.i += 4
	return rune(n), true
}

// quote renders s as a literal quotedString reads back as s.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

func identity(s string) string { return s }

// word scans a name up to a rune in stop, a space or a control character.
func (p *scanner) word(stop string) string {
	start := p.i
	for p.i < len(p.s) {
		r, n := utf8.DecodeRuneInString(p.s[p.i:])
		if strings.ContainsRune(stop, r) || unicode.IsSpace(r) || unicode.IsControl(r) {
			break
		}
		p.i += n
	}
	return p.s[start:p.i]
}
