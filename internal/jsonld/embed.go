package jsonld

import (
	"embed"
	"slices"
)

// Context URLs of the embedded NGSI-LD core contexts.
const (
	CoreContextV16 = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.6.jsonld"
	CoreContextV18 = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
	CoreContextV19 = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
	// CoreContextLatest is the un-versioned core context URL; zenne serves v1.8 for it.
	CoreContextLatest = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
	// CoreContext is the broker's default core context, applied last to every context.
	CoreContext = CoreContextV18
)

//go:embed contexts/*.jsonld contexts/sdm/*.jsonld
var embedded embed.FS

// sdmDomains are the Smart Data Models domains whose context is embedded.
var sdmDomains = []string{
	"Alert", "Building", "DCAT-AP", "Device", "Energy", "Environment", "IssueTracking",
	"KeyPerformanceIndicator", "Parking", "PointOfInterest", "Streetlighting",
	"TourismDestinations", "Transportation", "WasteManagement", "WaterConsumption",
}

// SDMContextURL is the URL of the @context of a Smart Data Models domain.
func SDMContextURL(domain string) string {
	return "https://raw.githubusercontent.com/smart-data-models/dataModel." + domain + "/master/context.jsonld"
}

// isCoreURL reports whether u is one of the core context URLs.
func isCoreURL(u string) bool {
	switch u {
	case CoreContextV16, CoreContextV18, CoreContextV19, CoreContextLatest:
		return true
	}
	return false
}

// embeddedFiles maps each served URL to its file in the embedded FS.
func embeddedFiles() map[string]string {
	m := map[string]string{
		CoreContextV16:    "contexts/ngsi-ld-core-context-v1.6.jsonld",
		CoreContextV18:    "contexts/ngsi-ld-core-context-v1.8.jsonld",
		CoreContextV19:    "contexts/ngsi-ld-core-context-v1.9.jsonld",
		CoreContextLatest: "contexts/ngsi-ld-core-context-v1.8.jsonld",
	}
	for _, d := range sdmDomains {
		m[SDMContextURL(d)] = "contexts/sdm/" + d + ".jsonld"
	}
	return m
}

// Document returns the bytes of the embedded context document served for url,
// so the HTTP layer can serve the core contexts itself.
func (r *Resolver) Document(url string) ([]byte, bool) {
	b, ok := r.docs[url]
	return b, ok
}

// EmbeddedURLs lists the URLs whose documents are embedded, sorted.
func (r *Resolver) EmbeddedURLs() []string {
	urls := make([]string, 0, len(r.docs))
	for u := range r.docs {
		urls = append(urls, u)
	}
	slices.Sort(urls)
	return urls
}
