// Command palisade is Palisade's one binary: the offline policy tools
// (validate, compile, eval, test) and, as later subcommands, the
// controller and the enforcement points. It parses flags and wires
// packages; the logic lives in the packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

// Exit codes shared by the offline tools.
const (
	exitDenied   = 1 // a policy problem or a denied object
	exitBadInput = 2 // the command could not do its job
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "palisade",
		Short:         "GitOps container-security policy for Kubernetes",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(validateCmd(), compileCmd(), evalCmd(), testCmd(), controllerCmd(), upCmd(), admissionCmd(), scannerCmd(), sensorCmd(), learnCmd())
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	code := exitBadInput
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if err.Error() != "" {
		fmt.Fprintln(stderr, "palisade:", err)
	}
	return code
}
