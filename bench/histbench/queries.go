package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/zenne-city/zenne/bench/internal/benchutil"
	"github.com/zenne-city/zenne/internal/app"
)

type queryResult struct {
	name  string
	goal  time.Duration // the goal for its p50, 0 when this data set is not the goal's
	times []time.Duration
	bytes int // of one response
	what  string
}

func (q *queryResult) pct(p float64) time.Duration {
	s := slices.Clone(q.times)
	slices.Sort(s)
	i := int(p / 100 * float64(len(s)-1))
	return s[i]
}

// queries times temporal queries on the imported data, asked of a real
// server on loopback.
func queries(ctx context.Context, data string, cfg *config, out io.Writer) ([]*queryResult, error) {
	key := benchutil.AdminKey()
	a, err := app.New(ctx, app.Config{Listen: "127.0.0.1:0", DataDir: data, StoreURL: cfg.storeURL, Log: discardLog(), Env: benchutil.ServerEnv(key)})
	if err != nil {
		return nil, err
	}
	defer a.Close(context.Background())
	if err := a.Start(); err != nil {
		return nil, err
	}
	// A store kept by an earlier run (-queries-only) has its administrator.
	if key, err = benchutil.ServerKey(ctx, a.Auth, key); err != nil {
		return nil, err
	}
	if err := a.WaitIndexed(ctx); err != nil {
		return nil, err
	}
	base := a.URL() + "/ngsi-ld/v1/temporal/entities"
	from := start.Format(time.RFC3339)
	to := start.Add(time.Duration(cfg.days) * 24 * time.Hour).Format(time.RFC3339)
	between := "timerel=between&timeAt=" + from + "&endTimeAt=" + to
	limit := min(cfg.sensors, 1000)
	// The goals are for a year of readings and 1,000 sensors.
	year, full := cfg.days == 365, cfg.days == 365 && cfg.sensors == 1000
	goal := func(applies bool, d time.Duration) time.Duration {
		if applies {
			return d
		}
		return 0
	}
	cases := []struct {
		name, url, what string
		goal            time.Duration
	}{
		{
			fmt.Sprintf("hourly avg over %d days, one sensor", cfg.days),
			base + "/" + url.PathEscape(sensorID(1)) + "?options=aggregatedValues&aggrMethods=avg&aggrPeriodDuration=PT1H&" + between,
			"hours", goal(year, 20*time.Millisecond),
		},
		{
			fmt.Sprintf("daily sum over %d days, %d sensors of a type", cfg.days, limit),
			fmt.Sprintf("%s?type=Sensor&options=aggregatedValues&aggrMethods=sum&aggrPeriodDuration=P1D&limit=%d&%s", base, limit, between),
			"entities", goal(full, time.Second),
		},
		{
			fmt.Sprintf("lastN=1, %d sensors", limit),
			fmt.Sprintf("%s?type=Sensor&lastN=1&limit=%d&timerel=before&timeAt=%s", base, limit, to),
			"entities", goal(full, 50*time.Millisecond),
		},
	}
	client := benchutil.WithKey(&http.Client{Timeout: 5 * time.Minute}, key)
	var res []*queryResult
	for _, c := range cases {
		q := &queryResult{name: c.name, goal: c.goal}
		for range cfg.runs {
			t := time.Now()
			body, err := get(ctx, client, c.url)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.name, err)
			}
			q.times = append(q.times, time.Since(t))
			q.bytes = len(body)
			q.what = describe(body, c.what)
		}
		fmt.Fprintf(out, "query  %s: p50 %s, max %s (%s, %s)\n", q.name, ms(q.pct(50)), ms(q.pct(100)), q.what, humanize.IBytes(uint64(q.bytes)))
		res = append(res, q)
	}
	return res, nil
}

func get(ctx context.Context, client *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		if len(body) > 300 {
			body = body[:300]
		}
		return nil, fmt.Errorf("%s: %s", resp.Status, body)
	}
	return body, nil
}

// describe says what a response holds: its entities, or the periods of
// one entity's one attribute.
func describe(body []byte, what string) string {
	if what == "entities" {
		var list []map[string]any
		if json.Unmarshal(body, &list) != nil {
			return "?"
		}
		return fmt.Sprintf("%d entities", len(list))
	}
	var e map[string]any
	if json.Unmarshal(body, &e) != nil {
		return "?"
	}
	for k, v := range e {
		if k == "id" || k == "type" {
			continue
		}
		if m, ok := v.(map[string]any); ok {
			if avg, ok := m["avg"].([]any); ok {
				return fmt.Sprintf("%d hourly averages", len(avg))
			}
		}
	}
	return "?"
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
}
