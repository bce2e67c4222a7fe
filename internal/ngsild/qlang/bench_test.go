package qlang

import "testing"

const benchQ = `temperature>20;temperature<30;(name=="Grand Place"|tags=="blue");address[city]=="Brussels";temperature.observedAt>=2024-01-01T00:00:00Z`

func BenchmarkParseQ(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseQ(benchQ, expand); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	q, err := ParseQ(benchQ, expand)
	if err != nil {
		b.Fatal(err)
	}
	e := testEntity()
	if !q.Match(e) {
		b.Fatal("no match")
	}
	b.ReportAllocs()
	for b.Loop() {
		q.Match(e)
	}
}

func BenchmarkMatchSimple(b *testing.B) {
	q, _ := ParseQ("temperature>25", expand)
	e := testEntity()
	b.ReportAllocs()
	for b.Loop() {
		q.Match(e)
	}
}

func BenchmarkScopeMatch(b *testing.B) {
	q, _ := ParseScopeQ("/Brussels/+/Solar;/Madrid/#")
	scopes := []string{"/Brussels/Energy/Solar", "/Madrid/Gardens"}
	b.ReportAllocs()
	for b.Loop() {
		q.Match(scopes)
	}
}
