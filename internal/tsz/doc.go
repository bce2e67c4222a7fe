// Package tsz is the chunk codec of the time-series (history) store.
package tsz
