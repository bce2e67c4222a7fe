package natsbus

import (
	"context"
	"fmt"
	"testing"
	"time"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestScratch(t *testing.T) {
	ctx := context.Background()
	nc, err := nats.Connect("nats://127.0.0.1:4222")
	if err != nil { t.Fatal(err) }
	defer nc.Close()
	fmt.Println("server", nc.ConnectedServerVersion(), "maxpayload", nc.MaxPayload())
	js, _ := jetstream.New(nc)
	name := "SCRATCH_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".x"}, Storage: jetstream.FileStorage, MaxAge: time.Hour, Duplicates: time.Minute})
	if err != nil { t.Fatal(err) }
	defer js.DeleteStream(ctx, name)
	inf, _ := s.Info(ctx)
	fmt.Printf("new: %+v\n", inf.State)
	err = s.Purge(ctx, jetstream.WithPurgeSequence(1000))
	fmt.Println("purge", err)
	inf, _ = s.Info(ctx)
	fmt.Printf("after purge: %+v\n", inf.State)
	pub := func(seq, exp uint64) {
		m := nats.NewMsg(name + ".x")
		m.Data = []byte("hi")
		m.Header.Set("Nats-Msg-Id", strconv.FormatUint(seq, 10))
		m.Header.Set("Nats-Expected-Last-Sequence", strconv.FormatUint(exp, 10))
		ack, err := js.PublishMsg(ctx, m)
		fmt.Printf("pub %d exp %d: %+v %v\n", seq, exp, ack, err)
		if err != nil {
			var ae *jetstream.APIError
			if errorsAs(err, &ae) { fmt.Printf("  api %+v\n", *ae) }
		}
	}
	pub(1000, 999)
	pub(1001, 1000)
	pub(1001, 1000)
	pub(1003, 1002)
	pub(1002, 1000)
	inf, _ = s.Info(ctx)
	fmt.Printf("state: %+v\n", inf.State)
	err = s.Purge(ctx, jetstream.WithPurgeSequence(2000))
	inf, _ = s.Info(ctx)
	fmt.Printf("purge2000 %v: %+v\n", err, inf.State)
	pub(2000, 1999)
	oc, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: 5})
	if err != nil { t.Fatal(err) }
	it, err := oc.Messages()
	if err != nil { t.Fatal(err) }
	m, err := it.Next()
	if err != nil { t.Fatal(err) }
	md, _ := m.Metadata()
	fmt.Printf("ordered got seq %d hdr %v\n", md.Sequence.Stream, m.Headers())
	it.Stop()
	rm, err := s.GetMsg(ctx, 1500)
	fmt.Println("getmsg 1500", rm, err)
	rm, err = s.GetMsg(ctx, 2000)
	fmt.Println("getmsg 2000", rm.Sequence, rm.Header, err)
}

func errorsAs(err error, target any) bool { return errorsAsImpl(err, target) }
