package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/histcore"
	"github.com/zenne-city/zenne/internal/tsz"
)

// DeleteHistory deletes recorded instances of one entity (see
// store.History).
func (s *Store) DeleteHistory(ctx context.Context, tenant, id string, sel store.HistorySelector) error {
	return s.editHistory(ctx, tenant, id, sel, nil)
}

// ReplaceInstance replaces one recorded instance (see store.History). The
// instance keeps its time and recording time, hence its instanceId.
func (s *Store) ReplaceInstance(ctx context.Context, tenant, id, attr, instanceID string, a *ngsild.Attribute) error {
	return s.editHistory(ctx, tenant, id, store.HistorySelector{Attr: attr, InstanceID: instanceID}, a)
}

// editHistory deletes the instances sel selects or, when with is not nil,
// replaces the one instance sel names with it, in the head records and the
// chunks, in one transaction holding the entity's history lock (so no
// sealing moves its records meanwhile). It returns store.ErrNotFound when
// nothing matched.
func (s *Store) editHistory(ctx context.Context, tenant, id string, sel store.HistorySelector, with *ngsild.Attribute) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	tid, err := s.tenantID(ctx, s.pool, tenant)
	if err != nil {
		return s.wrapClosed(err)
	}
	var it int64
	if sel.InstanceID != "" {
		var ok bool
		if it, _, ok = histcore.ParseInstanceID(sel.InstanceID); !ok {
			return store.ErrNotFound
		}
	}
	k := entKey{tid, id}
	var matched int
	// edit decides one instance (head record or chunk) of attribute name
	// and datasetId dataset: hit when sel selects it, which counts it and
	// then replaces *smp by the instance with or, without with, drops it
	// (keep false).
	edit := func(name, dataset string, smp *tsz.Sample) (hit, keep bool, err error) {
		if (sel.Attr != "" && name != sel.Attr) || (sel.DatasetID != nil && dataset != *sel.DatasetID) ||
			(sel.InstanceID != "" && histcore.InstanceID(smp, dataset) != sel.InstanceID) {
			return false, true, nil
		}
		matched++
		if with == nil {
			return true, false, nil
		}
		r, err := histcore.Replacement(smp, dataset, with)
		if err != nil {
			return true, true, err
		}
		*smp = r
		return true, true, nil
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		matched = 0
		if err := lockEntities(ctx, tx, []entKey{k}); err != nil {
			return err
		}
		if err := editHeads(ctx, tx, k, edit); err != nil {
			return err
		}
		if err := editChunks(ctx, tx, k, sel, it, edit, &matched); err != nil {
			return err
		}
		if matched == 0 {
			return store.ErrNotFound // rolls back: nothing changed anyway
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err != nil {
		return s.wrapClosed(fmt.Errorf("postgres: editing the history of %s: %w", id, err))
	}
	return nil
}

type editFunc func(name, dataset string, smp *tsz.Sample) (hit, keep bool, err error)

// editHeads applies edit to the instances of the entity's head records,
// rewriting the records it changed and deleting those it emptied.
func editHeads(ctx context.Context, tx pgx.Tx, k entKey, edit editFunc) error {
	rows, err := tx.Query(ctx, `SELECT at, seq, rec FROM h_head WHERE tid = $1 AND id = $2 ORDER BY at, seq`, k.tid, k.id)
	if err != nil {
		return err
	}
	type head struct {
		at, seq int64
		rec     []byte
	}
	var heads []head
	for rows.Next() {
		var h head
		if err := rows.Scan(&h.at, &h.seq, &h.rec); err != nil {
			rows.Close()
			return err
		}
		heads = append(heads, h)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	b := &pgx.Batch{}
	for _, h := range heads {
		types, insts, err := decodeHeadRecord(h.rec)
		if err != nil {
			return fmt.Errorf("head record %d: %w", h.seq, err)
		}
		kept := insts[:0:0]
		changed := false
		for _, in := range insts {
			hit, keep, err := edit(in.name, in.dataset, &in.s)
			if err != nil {
				return err
			}
			changed = changed || hit
			if keep {
				kept = append(kept, in)
			}
		}
		switch {
		case !changed:
		case len(kept) == 0:
			b.Queue(`DELETE FROM h_head WHERE at = $1 AND seq = $2`, h.at, h.seq)
		default:
			b.Queue(`UPDATE h_head SET rec = $3 WHERE at = $1 AND seq = $2`, h.at, h.seq, encodeHeadInsts(types, kept))
		}
	}
	if b.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, b).Close()
}

// editChunks applies sel to the entity's sealed history: whole series are
// deleted; for one instance (it is its time), the day that holds it is
// rewritten with edit. matched counts what was deleted or edited.
func editChunks(ctx context.Context, tx pgx.Tx, k entKey, sel store.HistorySelector, it int64, edit editFunc, matched *int) error {
	var hid int64
	err := tx.QueryRow(ctx, `SELECT hid FROM h_entities WHERE tid = $1 AND id = $2`, k.tid, k.id).Scan(&hid)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // nothing sealed
	}
	if err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `SELECT sid, name, dataset FROM h_series WHERE hid = $1`, hid)
	if err != nil {
		return err
	}
	type ser struct {
		sid           int64
		name, dataset string
	}
	var sers []ser
	for rows.Next() {
		var x ser
		if err := rows.Scan(&x.sid, &x.name, &x.dataset); err != nil {
			rows.Close()
			return err
		}
		sers = append(sers, x)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, x := range sers {
		if (sel.Attr != "" && x.name != sel.Attr) || (sel.DatasetID != nil && x.dataset != *sel.DatasetID) {
			continue
		}
		if sel.InstanceID == "" {
			// The whole series.
			tag, err := tx.Exec(ctx, `DELETE FROM h_chunks WHERE sid = $1`, x.sid)
			if err != nil {
				return err
			}
			if tag.RowsAffected() > 0 {
				*matched++
			}
			if _, err := tx.Exec(ctx, `DELETE FROM h_series WHERE sid = $1`, x.sid); err != nil {
				return err
			}
			continue
		}
		dk := dayKey{x.sid, histcore.DayOf(it)}
		old, err := readDays(ctx, tx, []int64{dk.sid}, []int32{int32(dk.day)})
		if err != nil {
			return err
		}
		o, ok := old[dk]
		if !ok || o.level != histcore.LevelRaw {
			continue // no such day, or rolled up: no instances left
		}
		kept := o.samples[:0:0]
		changed := false
		for i := range o.samples {
			hit, keep, err := edit(x.name, x.dataset, &o.samples[i])
			if err != nil {
				return err
			}
			changed = changed || hit
			if keep {
				kept = append(kept, o.samples[i])
			}
		}
		if changed {
			if err := deleteDays(ctx, tx, []dayKey{dk}); err != nil {
				return err
			}
			if err := insertChunks(ctx, tx, dayRows(dk, kept)); err != nil {
				return err
			}
		}
	}
	if sel.Attr == "" {
		if _, err := tx.Exec(ctx, `DELETE FROM h_entities WHERE hid = $1`, hid); err != nil {
			return err
		}
	}
	return nil
}
