package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/palisade-dev/palisade/policytest"
)

func testCmd() *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "test DIR",
		Short: "Run the PolicyTests of a policy repository",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			repo, err := loadRepo(cmd, args[0])
			if err != nil {
				return err
			}
			results, err := policytest.Run(cmd.Context(), repo)
			if err != nil {
				return err
			}
			if len(results) == 0 {
				return &exitError{code: exitDenied, err: fmt.Errorf("%s: no PolicyTest cases found", args[0])}
			}
			out := cmd.OutOrStdout()
			failed := 0
			for _, r := range results {
				name := r.Test + "/" + r.Case
				if r.Passed() {
					if verbose {
						fmt.Fprintf(out, "--- PASS: %s (%s)\n", name, r.Elapsed.Round(1000))
					}
					continue
				}
				failed++
				fmt.Fprintf(out, "--- FAIL: %s (%s)\n    %s/%s\n", name, r.Elapsed.Round(1000), args[0], r.Pos)
				for _, f := range r.Failures {
					fmt.Fprintf(out, "        %s\n", f)
				}
			}
			if failed > 0 {
				fmt.Fprintf(out, "FAIL\t%s\t%d of %d cases failed\n", args[0], failed, len(results))
				return &exitError{code: exitDenied, err: fmt.Errorf("%d of %d policy test cases failed", failed, len(results))}
			}
			fmt.Fprintf(out, "PASS\nok\t%s\t%d cases\n", args[0], len(results))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "list passing cases too")
	return cmd
}
