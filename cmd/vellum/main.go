// Command vellum is the command-line client of Vellum: it sends transactions
// and reads to a running vellumd over NATS, manages robot tokens, dataset acl
// modes and access explanations, evaluates GROQ offline and signs JWTs for
// trying access control out.
//
// Each subcommand lives in its own file and registers itself on rootCmd.
//
// Exit status: 0 on success; 1 when vellumd rejected the request (its typed
// error JSON is printed on standard output) or on any other failure; 2 for a
// usage error; 3 when vellumd cannot be reached or did not answer.
package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
)

// Global connection settings, shared by every subcommand that talks to vellumd.
var (
	flagServer  string
	flagToken   string
	flagDataset string
	flagTimeout time.Duration
)

var rootCmd = &cobra.Command{
	Use:           "vellum",
	Short:         "Command-line client of the Vellum document store",
	SilenceUsage:  true,
	SilenceErrors: true,
}

func init() {
	pf := rootCmd.PersistentFlags()
	pf.StringVar(&flagServer, "server", envOr("VELLUM_SERVER", "nats://127.0.0.1:4222"), "NATS URL of vellumd (env VELLUM_SERVER)")
	pf.StringVar(&flagToken, "token", os.Getenv("VELLUM_TOKEN"), "bearer credential: a robot token or a JWT (env VELLUM_TOKEN)")
	pf.StringVar(&flagDataset, "dataset", os.Getenv("VELLUM_DATASET"), "dataset to work on (env VELLUM_DATASET)")
	pf.DurationVar(&flagTimeout, "timeout", 30*time.Second, "how long to wait for vellumd's answer")
	rootCmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func main() {
	if err := rootCmd.Execute(); err != nil {
		// An exitError's command has already said what went wrong.
		var ee exitError
		if !errors.As(err, &ee) {
			fmt.Fprintln(os.Stderr, "vellum:", err)
		}
		os.Exit(exitCode(err))
	}
}

// exitError lets a subcommand choose its exit status after printing its own
// output (for example a typed error body on stdout).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// unreachableError says that vellumd could not be reached or did not
// answer: exit status 3.
type unreachableError struct{ err error }

func (e unreachableError) Error() string { return e.err.Error() }
func (e unreachableError) Unwrap() error { return e.err }

// noArgs is cobra.NoArgs as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), args)}
	}
	return nil
}

func exitCode(err error) int {
	var ee exitError
	var ue usageError
	var re unreachableError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		return 2
	case errors.As(err, &re):
		return 3
	}
	return 1
}
