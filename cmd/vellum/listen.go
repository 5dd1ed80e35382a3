package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/transport/natsapi"
)

var (
	listenFilter          string
	listenIncludeResult   bool
	listenIncludePrevious bool
	listenParams          []string
	listenLastEventID     string
	listenLimit           int
)

var listenCmd = &cobra.Command{
	Use:   "listen [--filter GROQ] [--include-result] [--include-previous] [--param NAME=JSON]... [--last-event-id ID]",
	Short: "Print the dataset's document changes, one JSON event per line",
	Long: `listen prints the changes of the dataset's documents that the credential may
read and the filter matches, one JSON event per line: welcome, then
mutation events (transition appear, update or disappear), error events (the
filter failed on one document), reconnect and disconnect (docs/listeners.md).

When the listener is lost (vellumd restarts, NATS drops the connection, or
it did not keep up), listen reconnects by itself and resumes after the last
event it printed: nothing is missed and nothing printed twice.

The filter is GROQ filter syntax, for example _type == "post" (no *, ->
or ^); --param sets $NAME to a JSON value, for example --param 'type="post"'.`,
	Example: `  vellum listen --filter '_type == "post"' --include-result
  vellum listen --filter '_type == $t' --param 't="post"' --last-event-id 01J...#post-1
  vellum listen --limit 1`,
	Args: noArgs,
	RunE: runListen,
}

func init() {
	f := listenCmd.Flags()
	f.StringVar(&listenFilter, "filter", "", "GROQ filter the documents must match (default: every document)")
	f.BoolVar(&listenIncludeResult, "include-result", false, "include the document after the change (result)")
	f.BoolVar(&listenIncludePrevious, "include-previous", false, "include the document before the change (previous)")
	f.StringArrayVar(&listenParams, "param", nil, "filter parameter NAME=JSON, for $NAME (repeatable)")
	f.StringVar(&listenLastEventID, "last-event-id", "", "resume after this event id (txid#documentId)")
	f.IntVar(&listenLimit, "limit", 0, "exit after printing this many mutation events (0: never)")
	rootCmd.AddCommand(listenCmd)
}

// listenRetry is the pause before listening again after a failed attempt.
const listenRetry = 250 * time.Millisecond

func runListen(cmd *cobra.Command, _ []string) error {
	dataset, err := requireDataset()
	if err != nil {
		return err
	}
	req := natsapi.ListenRequest{Filter: listenFilter, IncludeResult: listenIncludeResult, IncludePrevious: listenIncludePrevious, LastEventID: listenLastEventID}
	for _, p := range listenParams {
		name, value, ok := strings.Cut(p, "=")
		var v any
		if !ok || name == "" {
			return usageError{fmt.Errorf("--param %q: want NAME=JSON, for example 'type=\"post\"'", p)}
		}
		if err := json.Unmarshal([]byte(value), &v); err != nil {
			return usageError{fmt.Errorf("--param %s: the value is not JSON (a string needs quotes: '%s=\"...\"'): %v", name, name, err)}
		}
		if req.Params == nil {
			req.Params = map[string]any{}
		}
		req.Params[name] = v
	}
	if listenLimit < 0 {
		return usageError{errors.New("--limit must not be negative")}
	}

	// A connection that reconnects for ever: a lost listener is listened
	// for again, after the last event printed.
	reconnected := make(chan struct{}, 1)
	opts := append(natsapi.ClientOptions(),
		nats.Name("vellum listen"),
		nats.Timeout(connectTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(listenRetry),
		nats.ReconnectHandler(func(*nats.Conn) {
			select {
			case reconnected <- struct{}{}:
			default:
			}
		}))
	nc, err := nats.Connect(flagServer, opts...)
	if err != nil {
		return unreachableError{fmt.Errorf("cannot reach vellumd at %s: %w (is vellumd running? set --server or VELLUM_SERVER)", flagServer, err)}
	}
	defer nc.Close()
	client := natsapi.NewClient(nc, flagToken)
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	printed := 0
	s := &session{nc: nc, client: client, ctx: ctx, cancel: func() {}}
	subject, _ := natsapi.ListenSubject(dataset)
	for {
		lctx, cancel := context.WithTimeout(ctx, flagTimeout)
		st, err := client.Listen(lctx, dataset, req)
		cancel()
		if err != nil {
			var e *vellum.Error
			if errors.As(err, &e) && e.Code != vellum.CodeUnavailable && e.Code != vellum.CodeCanceled {
				return s.failure(cmd, subject, err)
			}
			if ctx.Err() != nil {
				return nil
			}
			// vellumd is not (yet) there: wait and try again.
			fmt.Fprintf(cmd.ErrOrStderr(), "vellum: listening again in %s: %v\n", listenRetry, err)
			time.Sleep(listenRetry)
			continue
		}
		welcome, _ := marshalJSON(st.Welcome)
		if err := printJSONLine(cmd, welcome); err != nil {
			st.Close()
			return err
		}
		lost, err := followListener(ctx, cmd, st, &req, &printed, reconnected)
		st.Close()
		if err != nil || !lost || ctx.Err() != nil {
			return err
		}
		drain(reconnected)
	}
}

func drain(ch chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

// followListener prints the listener's events until it ends. It returns
// lost true when the listener should be listened for again (after
// req.LastEventID, which it keeps up to date), and an error that ends the
// command otherwise.
func followListener(ctx context.Context, cmd *cobra.Command, st *natsapi.ListenStream, req *natsapi.ListenRequest, printed *int, reconnected chan struct{}) (lost bool, err error) {
	// A reconnection of the NATS connection may mean a new vellumd that
	// knows nothing of this listener: then listen again at once.
	nctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-reconnected:
			cancel()
		case <-nctx.Done():
		}
	}()
	for {
		raw, err := st.Next(nctx, 0)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return false, nil
		default:
			// Lost (no heartbeat), reconnected, or dropped messages: listen
			// again after the last event printed.
			fmt.Fprintf(cmd.ErrOrStderr(), "vellum: the listener was lost (%v); listening again after %q\n", err, req.LastEventID)
			return true, nil
		}
		var head struct {
			Type        string        `json:"type"`
			EventID     string        `json:"eventId"`
			LastEventID string        `json:"lastEventId"`
			Reason      string        `json:"reason"`
			Error       *vellum.Error `json:"error"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			return false, fmt.Errorf("vellumd sent a listener message that is not JSON: %s", raw)
		}
		if err := printJSONLine(cmd, raw); err != nil {
			return false, err
		}
		switch head.Type {
		case vellum.ListenMutation, vellum.ListenError:
			if head.EventID != "" {
				req.LastEventID = head.EventID
			}
			if head.Type == vellum.ListenMutation {
				*printed++
				if listenLimit > 0 && *printed >= listenLimit {
					return false, nil
				}
			}
		case natsapi.ListenReconnect:
			return true, nil
		case natsapi.ListenDisconnect:
			if head.Reason == "unauthorized" || head.Reason == "permissionDenied" {
				fmt.Fprintln(os.Stderr, "vellum: the listener's credential is no longer valid")
				return false, exitError{1}
			}
			return true, nil
		}
	}
}
