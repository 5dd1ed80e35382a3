package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
	"github.com/vellum-db/vellum"
	"github.com/vellum-db/vellum/transport/natsapi"
)

// connectTimeout bounds the NATS connection attempt.
const connectTimeout = 5 * time.Second

// session is one command's connection to vellumd.
type session struct {
	nc     *nats.Conn
	client *natsapi.Client
	ctx    context.Context
	cancel context.CancelFunc
}

// dial connects to the NATS server at --server. The context it returns ends
// after --timeout.
func dial(cmd *cobra.Command) (*session, error) {
	// ClientOptions declares a fresh inbox prefix, the only subjects a
	// client of vellumd's embedded NATS server may receive on.
	nc, err := nats.Connect(flagServer, append(natsapi.ClientOptions(),
		nats.Name("vellum CLI"),
		nats.Timeout(connectTimeout),
		nats.NoReconnect())...)
	if err != nil {
		return nil, unreachableError{fmt.Errorf("cannot reach vellumd at %s: %w (is vellumd running? set --server or VELLUM_SERVER)", flagServer, err)}
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), flagTimeout)
	return &session{nc: nc, client: natsapi.NewClient(nc, flagToken), ctx: ctx, cancel: cancel}, nil
}

func (s *session) Close() {
	s.cancel()
	s.nc.Close()
}

// dialDataset is dial for a command that works on the dataset named by
// --dataset (or VELLUM_DATASET), which it checks first.
func dialDataset(cmd *cobra.Command) (*session, string, error) {
	dataset, err := requireDataset()
	if err != nil {
		return nil, "", err
	}
	s, err := dial(cmd)
	if err != nil {
		return nil, "", err
	}
	return s, dataset, nil
}

// requireDataset returns --dataset, or a usage error saying how to set it.
func requireDataset() (string, error) {
	if flagDataset == "" {
		return "", usageError{errors.New("no dataset: pass --dataset NAME or set VELLUM_DATASET (`vellum dataset list` shows them)")}
	}
	if err := natsapi.ValidateDatasetName(flagDataset); err != nil {
		return "", usageError{fmt.Errorf("--dataset: %s", vellum.AsError(err).Description)}
	}
	return flagDataset, nil
}

// failure turns the error of a request into the command's error. A typed
// error from vellumd is printed on standard output as {"error":{...}} and
// gives exit status 1 (with a hint on standard error for a credential
// problem); a request nobody answered is an unreachableError.
func (s *session) failure(cmd *cobra.Command, subject string, err error) error {
	var e *vellum.Error
	if errors.As(err, &e) {
		body, merr := marshalJSON(map[string]*vellum.Error{"error": e})
		if merr != nil {
			return fmt.Errorf("%s (and the error cannot be printed as JSON: %v)", e.Error(), merr)
		}
		fmt.Fprintln(cmd.OutOrStdout(), string(body))
		switch {
		case e.Code == "unauthorized" && flagToken != "":
			fmt.Fprintln(os.Stderr, "vellum: vellumd rejected the token given by --token or VELLUM_TOKEN (the administrator token is in vellumd's DATA/admin.token)")
		case e.Code == "unauthorized", e.Code == "permissionDenied" && flagToken == "":
			fmt.Fprintln(os.Stderr, "vellum: no token was sent, so the request was made as everyone: pass --token or set VELLUM_TOKEN (the administrator token is in vellumd's DATA/admin.token)")
		}
		return exitError{1}
	}
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return unreachableError{fmt.Errorf("the NATS server at %s is up, but no vellumd answers on %s (is vellumd running and connected to it?)", flagServer, subject)}
	case errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return unreachableError{fmt.Errorf("vellumd at %s did not answer on %s within %s (see --timeout)", flagServer, subject, flagTimeout)}
	case errors.Is(err, nats.ErrMaxPayload):
		return fmt.Errorf("the request is larger than the %d bytes the NATS server at %s accepts", s.nc.MaxPayload(), flagServer)
	}
	return err
}

// marshalJSON is json.Marshal without HTML escaping.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// printValue writes v as JSON (see marshalJSON) and a newline to the
// command's output.
func printValue(cmd *cobra.Command, v any) error {
	b, err := marshalJSON(v)
	if err != nil {
		return err
	}
	return printJSONLine(cmd, b)
}

// printJSONLine writes one JSON value and a newline to the command's output.
func printJSONLine(cmd *cobra.Command, v json.RawMessage) error {
	_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s\n", v)
	return err
}
