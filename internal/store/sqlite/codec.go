package sqlite

import (
	"encoding/json"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// encodeEntity and decodeEntity define the stored document format.
func encodeEntity(e *ngsild.Entity) ([]byte, error) {
	return json.Marshal(e)
}

func decodeEntity(b []byte) (*ngsild.Entity, error) {
	e := new(ngsild.Entity)
	if err := json.Unmarshal(b, e); err != nil {
		return nil, err
	}
	return e, nil
}
