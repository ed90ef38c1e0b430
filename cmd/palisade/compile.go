package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policytest"
)

func compileCmd() *cobra.Command {
	var cluster, out, revision string
	cmd := &cobra.Command{
		Use:   "compile DIR --cluster NAME -o bundle.tar.gz",
		Short: "Compile a cluster's policy into an OPA bundle",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			repo, err := loadRepo(cmd, args[0])
			if err != nil {
				return err
			}
			b, err := bundles.Build(repo, cluster, revision)
			if err != nil {
				return err
			}
			// Compile before writing, so a bundle on disk always loads.
			if _, err := bundles.NewEngine(cmd.Context(), b); err != nil {
				return err
			}
			raw, err := bundles.Bytes(b)
			if err != nil {
				return err
			}
			if out == "-" {
				_, err = cmd.OutOrStdout().Write(raw)
				return err
			}
			if err := os.WriteFile(out, raw, 0o644); err != nil {
				return fmt.Errorf("write bundle: %w", err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (cluster %s, revision %s, %d bytes)\n", out, cluster, revision, len(raw))
			return nil
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster whose policy to compile (required)")
	cmd.Flags().StringVarP(&out, "output", "o", "bundle.tar.gz", "output file, - for stdout")
	cmd.Flags().StringVar(&revision, "revision", policytest.DefaultRevision, "bundle revision (the Git commit in production)")
	_ = cmd.MarkFlagRequired("cluster")
	return cmd
}
