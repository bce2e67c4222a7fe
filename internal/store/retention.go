package store

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Retention says how long history is kept, per tenant and attribute: the
// first rule that matches applies (more specific rules first), and history
// no rule matches is kept for ever.
type Retention struct {
	Rules []RetentionRule
}

// RetentionRule is the retention of the history of one tenant ("*": every
// tenant) and attribute (expanded; "" for every attribute). The levels
// follow one another, by the age of a UTC day: instances are kept for Raw;
// then, for numeric attributes, hourly rollups (count, sum, sum of squares,
// minimum, maximum per hour) until Hourly; then daily ones until Daily; then
// nothing. A zero level is skipped; Forever keeps it.
type RetentionRule struct {
	Tenant, Attr       string
	Raw, Hourly, Daily time.Duration
}

// Forever is a retention level that never ends.
const Forever = time.Duration(1<<63 - 1)

// For returns the rule for an attribute of a tenant, and whether one applies.
func (r Retention) For(tenant, attr string) (RetentionRule, bool) {
	for _, rule := range r.Rules {
		if (rule.Tenant == "*" || rule.Tenant == tenant) && (rule.Attr == "" || rule.Attr == attr) {
			return rule, true
		}
	}
	return RetentionRule{}, false
}

// ParseRetention reads rules separated by ';', each
// "<tenant>[/<attribute>]=raw:<d>[,hourly:<d>][,daily:<d>]" with durations in
// days (90d), weeks (12w) or years (5y, of 365 days), or "forever", e.g.
// "*=raw:90d,hourly:2y,daily:forever; energy/waterFlow=raw:400d". The default
// tenant is written "default". expand expands attribute names. Rules naming
// an attribute are tried before rules for a whole tenant, and a tenant's
// before "*".
func ParseRetention(s string, expand func(string) string) (Retention, error) {
	var r Retention
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		sel, levels, ok := strings.Cut(part, "=")
		if !ok {
			return Retention{}, fmt.Errorf("retention rule %q: write <tenant>[/<attribute>]=raw:90d,hourly:2y", part)
		}
		rule := RetentionRule{}
		sel = strings.TrimSpace(sel)
		tenant, attr, hasAttr := strings.Cut(sel, "/")
		switch {
		case tenant == "":
			return Retention{}, fmt.Errorf("retention rule %q: name a tenant (default, or * for all)", part)
		case tenant == "default":
			tenant = DefaultTenant
		}
		rule.Tenant = tenant
		if hasAttr {
			if attr == "" {
				return Retention{}, fmt.Errorf("retention rule %q: the attribute after / is empty", part)
			}
			rule.Attr = expand(attr)
		}
		seen := map[string]bool{}
		for _, lv := range strings.Split(levels, ",") {
			name, dur, ok := strings.Cut(strings.TrimSpace(lv), ":")
			if !ok || seen[name] {
				return Retention{}, fmt.Errorf("retention rule %q: levels are raw:<duration>, hourly:<duration>, daily:<duration>, each once", part)
			}
			seen[name] = true
			d, err := parseRetentionDuration(dur)
			if err != nil {
				return Retention{}, fmt.Errorf("retention rule %q: %w", part, err)
			}
			switch name {
			case "raw":
				rule.Raw = d
			case "hourly":
				rule.Hourly = d
			case "daily":
				rule.Daily = d
			default:
				return Retention{}, fmt.Errorf("retention rule %q: unknown level %q (raw, hourly or daily)", part, name)
			}
		}
		if rule.Raw == 0 {
			return Retention{}, fmt.Errorf("retention rule %q: give raw:<duration>, how long instances are kept", part)
		}
		if (rule.Hourly != 0 && rule.Hourly < rule.Raw) || (rule.Daily != 0 && rule.Daily < max(rule.Raw, rule.Hourly)) {
			return Retention{}, fmt.Errorf("retention rule %q: each level must be kept at least as long as the one before", part)
		}
		r.Rules = append(r.Rules, rule)
	}
	// Most specific first, keeping the written order otherwise.
	rank := func(x RetentionRule) int {
		n := 0
		if x.Tenant == "*" {
			n += 2
		}
		if x.Attr == "" {
			n++
		}
		return n
	}
	sorted := make([]RetentionRule, 0, len(r.Rules))
	for k := range 4 {
		for _, x := range r.Rules {
			if rank(x) == k {
				sorted = append(sorted, x)
			}
		}
	}
	r.Rules = sorted
	return r, nil
}

func parseRetentionDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "forever" {
		return Forever, nil
	}
	if len(s) < 2 {
		return 0, fmt.Errorf("duration %q: write a number of days, weeks or years such as 90d, 12w or 5y", s)
	}
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || n <= 0 || n > 1000*365 {
		return 0, fmt.Errorf("duration %q: write a positive number of days, weeks or years such as 90d, 12w or 5y", s)
	}
	day := 24 * time.Hour
	switch s[len(s)-1] {
	case 'd':
		return time.Duration(n) * day, nil
	case 'w':
		return time.Duration(n) * 7 * day, nil
	case 'y':
		return time.Duration(n) * 365 * day, nil
	}
	return 0, fmt.Errorf("duration %q: the unit is d (days), w (weeks) or y (years)", s)
}
