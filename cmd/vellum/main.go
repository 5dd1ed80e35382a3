// Command vellum is the command-line client of Vellum: it sends transactions
// and reads to a running vellumd over NATS, and evaluates GROQ offline.
//
// Each subcommand lives in its own file and registers itself on rootCmd.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// Global connection settings, shared by every subcommand that talks to vellumd.
var (
	flagServer  string
	flagToken   string
	flagDataset string
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
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func main() {
	if err := rootCmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "vellum:", err)
		os.Exit(exitCode(err))
	}
}

// exitError lets a subcommand choose its exit status after printing its own
// output (for example a typed error body on stdout).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func exitCode(err error) int {
	if e, ok := err.(exitError); ok {
		return e.code
	}
	return 1
}
