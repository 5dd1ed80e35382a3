package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// runCommand runs the vellum command line in-process with args and the given
// standard input, and returns what it wrote and its exit status, as main
// would. Flags are package variables that keep their values between runs,
// so every command's flags are reset to their defaults first.
func runCommand(t *testing.T, stdin string, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	resetFlags(rootCmd)
	var out, errOut bytes.Buffer
	rootCmd.SetArgs(args)
	rootCmd.SetIn(strings.NewReader(stdin))
	rootCmd.SetOut(&out)
	rootCmd.SetErr(&errOut)
	t.Cleanup(func() {
		rootCmd.SetArgs(nil)
		rootCmd.SetIn(nil)
		rootCmd.SetOut(nil)
		rootCmd.SetErr(nil)
	})
	if err := rootCmd.Execute(); err != nil {
		status = exitCode(err)
		// What main prints for errors that did not print themselves.
		var ee exitError
		if !errors.As(err, &ee) {
			errOut.WriteString("vellum: " + err.Error() + "\n")
		}
	}
	return out.String(), errOut.String(), status
}

// resetFlags resets the local flags of c and its subcommands to their
// defaults. The root's persistent flags are left alone: they come from the
// environment, which tests set with t.Setenv before each run.
func resetFlags(c *cobra.Command) {
	c.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
		if s, ok := f.Value.(pflag.SliceValue); ok {
			s.Replace(nil)
		} else {
			f.Value.Set(f.DefValue)
		}
		f.Changed = false
	})
	for _, sub := range c.Commands() {
		resetFlags(sub)
	}
}
