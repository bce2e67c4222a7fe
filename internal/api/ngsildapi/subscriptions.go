package ngsildapi

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/zenne-city/zenne/internal/auth"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/subscription"
	"github.com/zenne-city/zenne/internal/notify"
	"github.com/zenne-city/zenne/internal/store"
)

// Subscriptions is what the subscription routes need (*notify.Service).
type Subscriptions interface {
	Create(ctx context.Context, tenant string, sub *subscription.Subscription) error
	Get(ctx context.Context, tenant, id string) (notify.SubscriptionView, error)
	List(ctx context.Context, tenant string) []notify.SubscriptionView
	Update(ctx context.Context, tenant, id string, change func(old *subscription.Subscription) (*subscription.Subscription, error)) error
	Delete(ctx context.Context, tenant, id string) error
}

func (a *API) registerSubscriptions(h func(pattern string, perm auth.Permission, f func(*request) error)) {
	p := Prefix
	// Reading them too: a subscription's endpoint may carry the receiver's
	// credentials.
	const sub = auth.PermSubscribe
	h("POST "+p+"/subscriptions", sub, a.createSubscription)
	h("GET "+p+"/subscriptions", sub, a.listSubscriptions)
	h("GET "+p+"/subscriptions/{id}", sub, a.retrieveSubscription)
	h("PATCH "+p+"/subscriptions/{id}", sub, a.updateSubscription)
	h("DELETE "+p+"/subscriptions/{id}", sub, a.deleteSubscription)
}

// subscriptions returns the service, or an error when this zenne runs
// without one.
func (a *API) subscriptions() (Subscriptions, error) {
	if a.opts.Subscriptions == nil {
		return nil, ngsild.Errorf(ngsild.OperationNotSupported, "subscriptions are not enabled on this server")
	}
	return a.opts.Subscriptions, nil
}

// subscriptionContext is the @context a new subscription keeps for its
// notifications: the request's, as one URL (an inline context is hosted as
// an implicit one, so JSON notifications can link to it).
func (req *request) subscriptionContext() any {
	src := req.contextSource()
	if u, ok := src.(string); ok {
		return u
	}
	return req.api.implicitContext(req.r, src)
}

func (a *API) createSubscription(req *request) error {
	subs, err := a.subscriptions()
	if err != nil {
		return err
	}
	body, c, err := req.bodyObjectContext(false)
	if err != nil {
		return err
	}
	delete(body, "@context")
	sub, err := subscription.Parse(body, c, time.Now())
	if err != nil {
		return err
	}
	sub.Context = req.subscriptionContext()
	if err := subs.Create(req.r.Context(), req.storeTenant(), sub); err != nil {
		return err
	}
	req.w.Header().Set("Location", Prefix+"/subscriptions/"+url.PathEscape(sub.ID))
	req.w.WriteHeader(http.StatusCreated)
	return nil
}

// subscription returns the service and the {id} path segment.
func (a *API) subscription(req *request) (Subscriptions, string, error) {
	subs, err := a.subscriptions()
	if err != nil {
		return nil, "", err
	}
	id := req.r.PathValue("id")
	if ngsild.ValidURI(id) != nil {
		return nil, "", ngsild.Errorf(ngsild.BadRequestData, "the subscription id %q is not a URI", id)
	}
	return subs, id, nil
}

func (a *API) renderSubscription(req *request, v notify.SubscriptionView) (ngsild.Object, error) {
	c, err := req.context()
	if err != nil {
		return nil, err
	}
	sys, err := req.sysAttrsOption()
	if err != nil {
		return nil, err
	}
	return subscription.Render(v.Sub, v.Status, subscription.RenderOptions{Compact: c, SysAttrs: sys, Now: time.Now()}), nil
}

// sysAttrsOption reads options=sysAttrs.
func (req *request) sysAttrsOption() (bool, error) {
	for _, o := range splitList(req.r.URL.Query().Get("options")) {
		switch o {
		case "sysAttrs":
			return true, nil
		case "normalized", "keyValues", "concise", "simplified":
		default:
			return false, ngsild.Errorf(ngsild.BadRequestData, "unknown option %q: subscriptions take sysAttrs", o)
		}
	}
	return false, nil
}

func (a *API) retrieveSubscription(req *request) error {
	subs, id, err := a.subscription(req)
	if err != nil {
		return err
	}
	mt, err := req.accepted(mimeJSON, mimeLD)
	if err != nil {
		return err
	}
	v, err := subs.Get(req.r.Context(), req.storeTenant(), id)
	if err != nil {
		return err
	}
	obj, err := a.renderSubscription(req, v)
	if err != nil {
		return err
	}
	req.writeJSON(http.StatusOK, mt, obj, true)
	return nil
}

func (a *API) listSubscriptions(req *request) error {
	subs, err := a.subscriptions()
	if err != nil {
		return err
	}
	mt, err := req.accepted(mimeJSON, mimeLD)
	if err != nil {
		return err
	}
	var pg store.Query // limit, offset and count, as entity queries take them
	if err := a.page(req, &pg); err != nil {
		return err
	}
	all := subs.List(req.r.Context(), req.storeTenant())
	if pg.Count {
		req.w.Header().Set("NGSILD-Results-Count", strconv.Itoa(len(all)))
	}
	page := all[min(pg.Offset, len(all)):min(pg.Offset+pg.Limit, len(all))]
	list := make([]any, len(page))
	for i, v := range page {
		if list[i], err = a.renderSubscription(req, v); err != nil {
			return err
		}
	}
	req.writeJSON(http.StatusOK, mt, list, true)
	return nil
}

func (a *API) updateSubscription(req *request) error {
	subs, id, err := a.subscription(req)
	if err != nil {
		return err
	}
	body, c, err := req.bodyObjectContext(true)
	if err != nil {
		return err
	}
	delete(body, "@context")
	err = subs.Update(req.r.Context(), req.storeTenant(), id, func(old *subscription.Subscription) (*subscription.Subscription, error) {
		// The fragment's terms are the request's; the subscription keeps
		// its own @context for notifications.
		return subscription.Update(old, body, c, time.Now())
	})
	if err != nil {
		return err
	}
	req.noContent()
	return nil
}

func (a *API) deleteSubscription(req *request) error {
	subs, id, err := a.subscription(req)
	if err != nil {
		return err
	}
	if err := subs.Delete(req.r.Context(), req.storeTenant(), id); err != nil {
		return err
	}
	req.noContent()
	return nil
}
