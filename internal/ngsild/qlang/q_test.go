package qlang

import (
	"strings"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
)

const ns = "https://example.org/"

// expand mimics a context: core names stay core, the rest go to ns.
func expand(t string) string {
	if strings.Contains(t, "://") || strings.HasPrefix(t, "urn:") {
		return t
	}
	return ns + t
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParseQValid(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"exists", "temperature", "temperature"},
		{"not exists", "!temperature", "!temperature"},
		{"eq number", "temperature==20", "temperature==20"},
		{"float", "temperature>=20.50", "temperature>=20.5"},
		{"exponent", "a<1.5e3", "a<1500"},
		{"negative", "a>-3", "a>-3"},
		{"string", `name=="Grand Place"`, `name=="Grand Place"`},
		{"string escapes", `name=="a\"b\\c\u00e9\n"`, "name==\"a\\\"b\\\\cé\n\""},
		{"bool", "open==true", "open==true"},
		{"uri", "refBuilding==urn:ngsi-ld:Building:1", "refBuilding==urn:ngsi-ld:Building:1"},
		{"datetime", "a>2018-12-04T12:00:00Z", "a>2018-12-04T12:00:00Z"},
		{"datetime fraction offset", "a<=2018-12-04T12:00:00.123+01:00", "a<=2018-12-04T12:00:00.123+01:00"},
		{"date", "a<2018-12-04", "a<2018-12-04"},
		{"time", "a>12:30:00Z", "a>12:30:00Z"},
		{"range numbers", "a==1..5", "a==1..5"},
		{"range strings", `a=="a".."m"`, `a=="a".."m"`},
		{"range dates", "a==2018-01-01..2018-12-31", "a==2018-01-01..2018-12-31"},
		{"not range", "a!=1..5", "a!=1..5"},
		{"list", `a==1,"x",true,urn:a:b`, `a==1,"x",true,urn:a:b`},
		{"ne list", "a!=1,2", "a!=1,2"},
		{"pattern quoted", `name~="^Gr(a|o)nd.*"`, `name~="^Gr(a|o)nd.*"`},
		{"pattern bare", `name~=(?i)^gr.*`, `name~="(?i)^gr.*"`},
		{"pattern bare groups", `name~=^(a|b)[;)]\)x;c|d`, `name~="^(a|b)[;)]\\)x";c|d`},
		{"pattern bare in parens", `(name~=^a.*)`, `name~="^a.*"`},
		{"not pattern", `name!~="x"`, `name!~="x"`},
		{"and", "a==1;b==2", "a==1;b==2"},
		{"or", "a==1|b==2", "a==1|b==2"},
		{"precedence", "a==1;b==2|c==3", "a==1;b==2|c==3"},
		{"parens needed", "a==1;(b==2|c==3)", "a==1;(b==2|c==3)"},
		{"parens dropped", "((a==1);(b==2))|(c)", "a==1;b==2|c"},
		{"flatten", "(a;b);(c;d)", "a;b;c;d"},
		{"sub attr", "a.b==1", "a.b==1"},
		{"deep sub", "a.b.c>1", "a.b.c>1"},
		{"metadata", "a.observedAt>2020-01-01T00:00:00Z", "a.observedAt>2020-01-01T00:00:00Z"},
		{"sub metadata", "a.b.unitCode==\"CEL\"", "a.b.unitCode==\"CEL\""},
		{"compound", "address[city]==\"Brussels\"", "address[city]==\"Brussels\""},
		{"compound deep", "a[k1][k2 x]==1", "a[k1][k2 x]==1"},
		{"sub compound", "a.b[k]==1", "a.b[k]==1"},
		{"spaces", " a == 1 ; ( b > 2 | c ) ", "a==1;(b>2|c)"},
		{"prefixed name", "ex:temp==1", "ex:temp==1"},
		{"unicode name", "température==1", "température==1"},
		{"quoted with delimiters", `a=="x;y|z,(w)"`, `a=="x;y|z,(w)"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := ParseQ(tc.in, expand)
			if err != nil {
				t.Fatalf("ParseQ(%q): %v", tc.in, err)
			}
			if got := q.String(); got != tc.want {
				t.Fatalf("String() = %q, want %q", got, tc.want)
			}
			q2, err := ParseQ(q.String(), expand)
			if err != nil {
				t.Fatalf("re-parse %q: %v", q.String(), err)
			}
			if q2.String() != q.String() {
				t.Fatalf("re-parse changed %q to %q", q.String(), q2.String())
			}
		})
	}
}

func TestParseQInvalid(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", "", "empty expression"},
		{"blank", "   ", "empty expression"},
		{"empty term", "a==1;;b", "unexpected ';' at position 6, expected an attribute name"},
		{"leading and", ";a", "unexpected ';' at position 1"},
		{"trailing or", "a|", "unexpected end of input at position 3, expected an attribute name"},
		{"trailing garbage", "a==1 b", "unexpected 'b' at position 6"},
		{"unbalanced open", "(a==1", "unbalanced '(' at position 1"},
		{"unbalanced close", "a==1)", "unexpected ')' at position 5"},
		{"empty parens", "()", "unexpected ')' at position 2"},
		{"missing value", "a==", "expected a value"},
		{"missing value before and", "a==;b", "unexpected ';' at position 4, expected a value"},
		{"bare word", "a==hello", `invalid value "hello" at position 4`},
		{"bad operator", "a=1", "expected an operator"},
		{"bad operator2", "a=>1", "expected an operator"},
		{"bad regexp", `a~="("`, "invalid regular expression at position 4"},
		{"empty regexp", `a~=;b`, "expected a regular expression"},
		{"unterminated string", `a=="abc`, "unterminated string starting at position 4"},
		{"bad escape", `a=="\q"`, `invalid escape '\q'`},
		{"range with gt", "a>1..5", "a range needs == or !="},
		{"list with lt", "a<1,2", "a value list needs == or !="},
		{"gt bool", "a>true", "> needs a number, string or time"},
		{"gt uri", "a>urn:x:y", "> needs a number, string or time"},
		{"range bool", "a==true..false", "range bounds must be numbers, strings or times"},
		{"range mixed", `a==1.."z"`, "different types"},
		{"range open", "a==1..", "expected a value"},
		{"empty sub", "a..b==1", "expected an attribute name"},
		{"empty key", "a[]==1", "empty key"},
		{"unbalanced bracket", "a[k==1", "unbalanced '['"},
		{"meta then sub", "a.observedAt.b", "nothing may follow"},
		{"meta then key", "a.unitCode[x]", "has no keys"},
		{"not then paren", "!(a)", "expected an attribute name"},
		{"huge number", "a==1e999", "invalid value"},
		{"bad date", "a==2018-13-45", "invalid value"},
		{"too long", "a==" + strings.Repeat("1", maxLen), "longer than"},
		{"too deep", strings.Repeat("(", maxDepth+1) + "a" + strings.Repeat(")", maxDepth+1), "nested deeper than 64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := ParseQ(tc.in, expand)
			if err == nil {
				t.Fatalf("ParseQ(%q) = %q, want error containing %q", tc.in, q, tc.want)
			}
			if !ngsild.IsType(err, ngsild.BadRequestData) {
				t.Fatalf("error %v is not BadRequestData", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err.Error(), tc.want)
			}
		})
	}
}

func TestParseQDepthLimitOK(t *testing.T) {
	in := strings.Repeat("(", maxDepth) + "a" + strings.Repeat(")", maxDepth)
	if _, err := ParseQ(in, expand); err != nil {
		t.Fatalf("depth %d: %v", maxDepth, err)
	}
}

func prop(v any) *ngsild.Attribute { return &ngsild.Attribute{Kind: ngsild.Property, Value: v} }

func testEntity() *ngsild.Entity {
	obs := mustTime("2024-05-01T10:00:00Z")
	return &ngsild.Entity{
		ID:    "urn:ngsi-ld:Sensor:1",
		Types: []string{ns + "Sensor"},
		Attrs: map[string][]*ngsild.Attribute{
			ns + "temperature": {
				{Kind: ngsild.Property, Value: 21.5, ObservedAt: obs, UnitCode: "CEL",
					Sub: map[string]*ngsild.Attribute{
						ns + "accuracy": {Kind: ngsild.Property, Value: 0.5, UnitCode: "CEL"},
						ns + "source":   {Kind: ngsild.Relationship, Value: "urn:ngsi-ld:Device:9"},
					}},
				{Kind: ngsild.Property, Value: 30.0, DatasetID: "urn:ngsi-ld:Dataset:raw"},
			},
			ns + "name":     {prop("Grand Place")},
			ns + "count":    {prop(float64(7))},
			ns + "open":     {prop(true)},
			ns + "tags":     {prop([]any{"red", "blue", 3.0})},
			ns + "lastSeen": {prop("2024-05-01T09:30:00.5+01:00")},
			ns + "day":      {prop("2024-05-01")},
			ns + "opens":    {prop("08:30:00")},
			ns + "address": {prop(map[string]any{
				"city":    "Brussels",
				"zip":     1000.0,
				"geo":     map[string]any{"lat": 50.85},
				"streets": []any{"Rue A", "Rue B"},
			})},
			ns + "refBuilding": {{Kind: ngsild.Relationship, Value: "urn:ngsi-ld:Building:1"}},
			ns + "label": {{Kind: ngsild.LanguageProperty, Value: map[string]any{
				"en": "Town hall", "fr": "Hôtel de ville", "nl": []any{"Stadhuis", "Raadhuis"}}}},
			ns + "category": {{Kind: ngsild.VocabProperty, Value: ns + "commercial"}},
			ns + "readings": {{Kind: ngsild.ListProperty, Value: []any{1.0, 2.0, 3.0}}},
			ns + "members":  {{Kind: ngsild.ListRelationship, Value: []any{"urn:a:1", "urn:a:2"}}},
			ns + "config":   {{Kind: ngsild.JsonProperty, Value: map[string]any{"mode": "eco", "level": 3.0}}},
		},
	}
}

func TestMatch(t *testing.T) {
	e := testEntity()
	tests := []struct {
		name string
		q    string
		want bool
	}{
		{"exists", "temperature", true},
		{"exists missing", "humidity", false},
		{"not exists", "!humidity", true},
		{"not exists present", "!temperature", false},
		{"eq default instance", "temperature==21.5", true},
		{"eq other instance", "temperature==30", true},
		{"eq none", "temperature==25", false},
		{"gt any instance", "temperature>25", true},
		{"lt any instance", "temperature<22", true},
		{"gt none", "temperature>30", false},
		{"ge boundary", "temperature>=30", true},
		{"ne multi instance", "temperature!=21.5", true}, // the raw instance is 30
		{"int literal float value", "count==7", true},
		{"string eq", `name=="Grand Place"`, true},
		{"string lexicographic", `name>"Grand"`, true},
		{"string lt", `name<"Alpha"`, false},
		{"type mismatch eq", `temperature=="21.5"`, false},
		{"type mismatch gt", `name>3`, false},
		{"type mismatch ne", `name!=3`, true},
		{"bool", "open==true", true},
		{"bool false", "open==false", false},
		{"bool ne", "open!=false", true},
		{"array contains", `tags=="blue"`, true},
		{"array contains number", `tags==3`, true},
		{"array not contains", `tags=="green"`, false},
		{"array ne", `tags!="blue"`, false},
		{"array ne none", `tags!="green"`, true},
		{"array gt", `tags>2`, true},
		{"list any", `name=="x","Grand Place"`, true},
		{"list none", `name=="x","y"`, false},
		{"ne list", `name!="x","Grand Place"`, false},
		{"ne list none", `name!="x","y"`, true},
		{"range in", "temperature==21..22", true},
		{"range inclusive", "count==7..8", true},
		{"range out", "count==8..9", false},
		{"not range", "count!=8..9", true},
		{"not range inside", "count!=1..9", false},
		{"range strings", `name=="G".."H"`, true},
		{"pattern", `name~="^Gr.*ce$"`, true},
		{"pattern case", `name~="(?i)^grand"`, true},
		{"pattern no", `name~="^Petit"`, false},
		{"not pattern", `name!~="^Petit"`, true},
		{"not pattern matching", `name!~="Grand"`, false},
		{"pattern on number", `count~="7"`, false},
		{"pattern array", `tags~="^bl"`, true},
		{"datetime gt string value", "lastSeen>2024-05-01T08:00:00Z", true},
		{"datetime eq offset", "lastSeen==2024-05-01T08:30:00.5Z", true},
		{"datetime lt", "lastSeen<2024-05-01T08:30:00Z", false},
		{"date vs date", "day>=2024-05-01", true},
		{"date range", "day==2024-04-01..2024-05-31", true},
		{"date literal vs datetime value", "lastSeen>2024-05-01", true},
		{"time of day", "opens<09:00:00", true},
		{"time of day zone", "opens==10:30:00+02:00", true},
		{"time vs string name", "name>09:00:00", false},
		{"quoted string not time", `lastSeen>"2024"`, true},
		{"observedAt", "temperature.observedAt>=2024-05-01T10:00:00Z", true},
		{"observedAt lt", "temperature.observedAt<2024-05-01T10:00:00Z", false},
		{"observedAt range", "temperature.observedAt==2024-05-01..2024-05-02", true},
		{"observedAt quoted", `temperature.observedAt>"2024-04-30T00:00:00Z"`, true},
		{"observedAt exists", "temperature.observedAt", true},
		{"observedAt missing", "name.observedAt", false},
		{"not observedAt", "!name.observedAt", true},
		{"unitCode", `temperature.unitCode=="CEL"`, true},
		{"datasetId", "temperature.datasetId==urn:ngsi-ld:Dataset:raw", true},
		{"datasetId quoted", `temperature.datasetId=="urn:ngsi-ld:Dataset:raw"`, true},
		{"sub attribute", "temperature.accuracy<1", true},
		{"sub attribute no", "temperature.accuracy>1", false},
		{"sub exists", "temperature.accuracy", true},
		{"sub missing", "temperature.precision", false},
		{"sub metadata", `temperature.accuracy.unitCode=="CEL"`, true},
		{"sub relationship", "temperature.source==urn:ngsi-ld:Device:9", true},
		{"compound", `address[city]=="Brussels"`, true},
		{"compound number", "address[zip]>=1000", true},
		{"compound deep", "address[geo][lat]>50", true},
		{"compound array", `address[streets]=="Rue B"`, true},
		{"compound missing", `address[country]=="BE"`, false},
		{"compound exists", "address[geo][lat]", true},
		{"not compound", "!address[country]", true},
		{"compound on scalar", "name[x]", false},
		{"relationship eq", "refBuilding==urn:ngsi-ld:Building:1", true},
		{"relationship eq string", `refBuilding=="urn:ngsi-ld:Building:1"`, true},
		{"relationship ne", "refBuilding!=urn:ngsi-ld:Building:2", true},
		{"relationship gt not supported", `refBuilding>"urn"`, false},
		{"relationship pattern not supported", `refBuilding~="Building"`, false},
		{"language any", `label=="Hôtel de ville"`, true},
		{"language array", `label=="Raadhuis"`, true},
		{"language key", `label[en]=="Town hall"`, true},
		{"language key wrong", `label[fr]=="Town hall"`, false},
		{"language pattern", `label~="^Stad"`, true},
		{"vocab expanded", `category=="commercial"`, true},
		{"vocab iri", `category=="` + ns + `commercial"`, true},
		{"vocab other", `category=="residential"`, false},
		{"list property element", "readings==2", true},
		{"list property range", "readings==2.5..10", true},
		{"list property none", "readings==4", false},
		{"list relationship", "members==urn:a:2", true},
		{"json key", `config[mode]=="eco"`, true},
		{"json whole object", `config=="eco"`, false},
		{"and", "temperature>20;open==true", true},
		{"and false", "temperature>20;open==false", false},
		{"or", "open==false|count==7", true},
		{"precedence and first", "open==false;count==7|name", true}, // (F;T)|T
		{"precedence and binds", "name|open==false;count==1", true}, // T|(F;F)
		{"precedence false", "open==false;name|count==1", false},    // (F;T)|F
		{"parens change", "open==false;(name|count==7)", false},     // F;(T|T)
		{"parens or in and", "(open==false|count==7);name", true},   // (F|T);T
		{"nested", "((temperature>100|temperature<0)|(name;!humidity))", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := ParseQ(tc.q, expand)
			if err != nil {
				t.Fatalf("ParseQ(%q): %v", tc.q, err)
			}
			if got := q.Match(e); got != tc.want {
				t.Fatalf("%q.Match = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
}

func TestMatchNilAndEmpty(t *testing.T) {
	var q *Query
	if !q.Match(testEntity()) {
		t.Fatal("nil query should match")
	}
	q, _ = ParseQ("a", expand)
	if q.Match(nil) || q.Match(&ngsild.Entity{}) {
		t.Fatal("query should not match nil or empty entity")
	}
	nq, _ := ParseQ("!a", expand)
	if !nq.Match(&ngsild.Entity{}) {
		t.Fatal("!a should match an entity without attributes")
	}
}

func TestValueAttrs(t *testing.T) {
	for _, tc := range []struct {
		q     string
		attrs []string
		ok    bool
	}{
		{`level>50`, []string{ns + "level"}, true},
		{`level>50;(status=="ok"|name~="^B")`, []string{ns + "level", ns + "status", ns + "name"}, true},
		{`level>50;level<90`, []string{ns + "level"}, true},
		{`!broken`, []string{ns + "broken"}, true},
		{`address[city]=="Brussels"`, []string{ns + "address"}, true},
		{`level.observedAt>2020-01-01T00:00:00Z`, []string{ns + "level"}, false},
		{`level>1;temperature.accuracy<0.5`, []string{ns + "level", ns + "temperature"}, false},
	} {
		q, err := ParseQ(tc.q, expand)
		if err != nil {
			t.Fatalf("ParseQ(%q): %v", tc.q, err)
		}
		attrs, ok := q.ValueAttrs()
		if ok != tc.ok || strings.Join(attrs, " ") != strings.Join(tc.attrs, " ") {
			t.Errorf("ValueAttrs(%q) = %v, %v; want %v, %v", tc.q, attrs, ok, tc.attrs, tc.ok)
		}
	}
}
