package main

import (
	"context"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// countHook lets every client in and, with onPublish, counts each message in
// its OnPublish hook.
type countHook struct {
	mochi.HookBase
	onPublish bool
	count     func()
}

func (h *countHook) ID() string { return "count" }

func (h *countHook) Provides(b byte) bool {
	switch b {
	case mochi.OnConnectAuthenticate, mochi.OnACLCheck:
		return true
	case mochi.OnPublish:
		return h.onPublish
	}
	return false
}

func (h *countHook) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return true }
func (h *countHook) OnACLCheck(*mochi.Client, string, bool) bool              { return true }

func (h *countHook) OnPublish(_ *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	h.count()
	return pk, nil
}

func startMochi(inline bool, count func()) (target, error) {
	s := mochi.New(&mochi.Options{InlineClient: inline, Logger: quiet()})
	if err := s.AddHook(&countHook{onPublish: !inline, count: count}, nil); err != nil {
		return target{}, err
	}
	if inline {
		err := s.Subscribe("/+/+/attrs", 1, func(*mochi.Client, packets.Subscription, packets.Packet) { count() })
		if err != nil {
			return target{}, err
		}
	}
	l := listeners.NewTCP(listeners.Config{ID: "tcp", Address: "127.0.0.1:0"})
	if err := s.AddListener(l); err != nil {
		return target{}, err
	}
	if err := s.Serve(); err != nil {
		return target{}, err
	}
	return target{addr: l.Address(), close: func() { s.Close() }}, nil
}

func startMochiHook(_ context.Context, count func()) (target, error) {
	return startMochi(false, count)
}

func startMochiInline(_ context.Context, count func()) (target, error) {
	return startMochi(true, count)
}
