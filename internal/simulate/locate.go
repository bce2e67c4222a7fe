package simulate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// LocateFrom gives each device the location its entity has at api (zenne's
// NGSI-LD API), where the entity exists, and reports how many it found.
//
// Devices carry their location as a static attribute, which every update
// writes to the entity. Most of the demo city's sensors stand where the
// demo puts them whatever the time, but some public buildings (and their
// water meters) are placed at random after draws that depend on the hour
// the demo was built; reading the locations back keeps them where the
// running demo shows them. Call it before Provision and Run. c nil is
// http.DefaultClient, which reads a public-read tenant only (zenne demo's
// default tenant is one); APIClient(key, timeout) reads any the key may.
func (f *Fleet) LocateFrom(ctx context.Context, api, tenant string, c *http.Client) (int, error) {
	if c == nil {
		c = http.DefaultClient
	}
	base := strings.TrimRight(api, "/")
	byEntity := make(map[string][]*Device)
	var types []string
	for _, d := range f.members {
		if !slices.Contains(types, d.Kind.EntityType()) {
			types = append(types, d.Kind.EntityType())
		}
		byEntity[d.Entity] = append(byEntity[d.Entity], d)
	}
	const limit = 1000
	found := 0
	for _, typ := range types {
		for offset := 0; ; offset += limit {
			u := fmt.Sprintf("%s/ngsi-ld/v1/entities?type=%s&attrs=location&options=keyValues&limit=%d&offset=%d",
				base, url.QueryEscape(typ), limit, offset)
			page, err := getEntities(ctx, c, u, tenant)
			if err != nil {
				return found, err
			}
			for _, e := range page {
				id, _ := e["id"].(string)
				lon, lat, ok := point(e["location"])
				if !ok {
					continue
				}
				for _, d := range byEntity[id] {
					d.Lon, d.Lat = lon, lat
					found++
				}
			}
			if len(page) < limit {
				break
			}
		}
	}
	return found, nil
}

func getEntities(ctx context.Context, c *http.Client, u, tenant string) ([]map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if tenant != "" {
		req.Header.Set("NGSILD-Tenant", tenant)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(http.MethodGet, u, resp, body)
	}
	var page []map[string]any
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return page, nil
}

// point reads a GeoJSON Point.
func point(v any) (lon, lat float64, ok bool) {
	g, _ := v.(map[string]any)
	if g == nil || g["type"] != "Point" {
		return 0, 0, false
	}
	c, _ := g["coordinates"].([]any)
	if len(c) < 2 {
		return 0, 0, false
	}
	lon, ok1 := c[0].(float64)
	lat, ok2 := c[1].(float64)
	return lon, lat, ok1 && ok2
}
