package alarm

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// Action is what staff do with an alert.
type Action struct {
	Kind    string // acknowledge, assign or resolve
	By      string // who (until accounts exist, as the client says)
	To      string // assign: to whom
	Comment string
}

// Action kinds.
const (
	Acknowledge = "acknowledge"
	Assign      = "assign"
	Resolve     = "resolve"
)

// Act applies a staff action to an alert and returns the alert after it.
// The action is written as a new instance of alertStatus (or assignedTo)
// with the actor and comment as sub-attributes, so the alert's history
// keeps who did what and when. An action the alert's status does not
// allow (acknowledging a resolved alert) is a Conflict.
func (s *Service) Act(ctx context.Context, tenant, id string, a Action) (*ngsild.Entity, error) {
	a.By, a.To, a.Comment = strings.TrimSpace(a.By), strings.TrimSpace(a.To), strings.TrimSpace(a.Comment)
	switch {
	case a.Kind != Acknowledge && a.Kind != Assign && a.Kind != Resolve:
		return nil, ngsild.Errorf(ngsild.BadRequestData, "action %q: acknowledge, assign or resolve", a.Kind)
	case a.By == "":
		return nil, ngsild.Errorf(ngsild.BadRequestData, "by is missing: say who acts on the alert")
	case len(a.By) > 200 || len(a.To) > 200 || len(a.Comment) > 4000:
		return nil, ngsild.Errorf(ngsild.BadRequestData, "by and to are at most 200 characters, comment at most 4,000")
	case a.Kind == Assign && a.To == "":
		return nil, ngsild.Errorf(ngsild.BadRequestData, "to is missing: say whom the alert is assigned to")
	case a.Kind == Resolve && a.Comment == "":
		return nil, ngsild.Errorf(ngsild.BadRequestData, "comment is missing: say how the alert was resolved")
	}
	cur, err := s.broker.Entity(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(cur.Types, AlertType) || cur.Instance(AttrStatus, "") == nil {
		return nil, ngsild.Errorf(ngsild.BadRequestData, "%s is not an alert a rule opened", id)
	}
	status, _ := cur.Instance(AttrStatus, "").Value.(string)
	if status == StatusSolved {
		return nil, ngsild.Errorf(ngsild.Conflict, "alert %s is resolved already; a new alert opens if the condition returns", id)
	}
	if a.Kind == Acknowledge && status == StatusAcked {
		return nil, ngsild.Errorf(ngsild.Conflict, "alert %s is acknowledged already", id)
	}
	now := s.opts.Now().UTC()
	inst := &ngsild.Attribute{Kind: ngsild.Property, ObservedAt: now, Sub: map[string]*ngsild.Attribute{
		attrActor: {Kind: ngsild.Property, Value: a.By}}}
	if a.Comment != "" {
		inst.Sub[attrComment] = &ngsild.Attribute{Kind: ngsild.Property, Value: a.Comment}
	}
	frag := &ngsild.Entity{ID: id, Attrs: map[string][]*ngsild.Attribute{}}
	switch a.Kind {
	case Acknowledge:
		inst.Value = StatusAcked
		frag.Attrs[AttrStatus] = []*ngsild.Attribute{inst}
	case Resolve:
		inst.Value = StatusSolved
		frag.Attrs[AttrStatus] = []*ngsild.Attribute{inst}
	case Assign:
		inst.Value = a.To
		frag.Attrs[AttrAssignee] = []*ngsild.Attribute{inst}
	}
	if err := s.broker.MergeEntity(ctx, tenant, id, frag); err != nil {
		return nil, err
	}
	s.m.actions.WithLabelValues(a.Kind).Inc()
	e, err := s.broker.Entity(ctx, tenant, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ngsild.Errorf(ngsild.ResourceNotFound, "alert %s was deleted meanwhile", id)
	}
	return e, err
}
