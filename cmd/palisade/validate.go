package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/palisade-dev/palisade/policy"
)

func validateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate DIR",
		Short: "Validate a policy repository; print every error with file:line:col",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			repo, err := loadRepo(cmd, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (%d policies, %d rulesets, %d learned, %d attestors, %d tests; clusters: %v)\n",
				args[0], len(repo.Policies), len(repo.Rulesets), len(repo.Learned), len(repo.Attestors), len(repo.Tests), repo.Clusters())
			return nil
		},
	}
}

// loadRepo loads a repository, printing every validation error to stderr
// with the file path joined to dir; it returns an exit code 1 error then.
func loadRepo(cmd *cobra.Command, dir string) (*policy.Repo, error) {
	repo, err := policy.LoadDir(dir)
	var list policy.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			e.Pos.File = dir + "/" + e.Pos.File
			fmt.Fprintln(cmd.ErrOrStderr(), e.Error())
		}
		return nil, &exitError{code: exitDenied, err: fmt.Errorf("%s: %d error(s)", dir, len(list))}
	}
	return repo, err
}
