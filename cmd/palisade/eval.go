package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/palisade-dev/palisade/bundles"
	"github.com/palisade-dev/palisade/policytest"
)

// evalResult is one object's decision in eval's output.
type evalResult struct {
	Object     string              `json:"object"`
	File       string              `json:"file"`
	Allowed    bool                `json:"allowed"`
	Violations []bundles.Violation `json:"violations"`
	Warnings   []string            `json:"warnings"`
}

func evalCmd() *cobra.Command {
	var (
		cluster, output, now string
		files                []string
		opts                 policytest.RequestOptions
	)
	cmd := &cobra.Command{
		Use:   "eval DIR --cluster NAME -f MANIFESTS...",
		Short: "Evaluate manifests offline exactly as admission would",
		Long: "Evaluate manifests offline exactly as admission would.\n" +
			"Exit status: 0 when every object is allowed, 1 when any is denied, 2 on bad input.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "json" && output != "table" {
				return fmt.Errorf("--output: want json or table, got %q", output)
			}
			evalTime := time.Now()
			if now != "" {
				t, err := time.Parse(time.RFC3339, now)
				if err != nil {
					return fmt.Errorf("--now: %w", err)
				}
				evalTime = t
			}
			repo, err := loadRepo(cmd, args[0])
			if err != nil {
				return &exitError{code: exitBadInput, err: err}
			}
			eng, err := policytest.NewEngines(repo).For(cmd.Context(), cluster)
			if err != nil {
				return err
			}
			var manifests []policytest.Manifest
			for _, f := range files {
				ms, err := readManifestFile(cmd.InOrStdin(), f)
				if err != nil {
					return err
				}
				manifests = append(manifests, ms...)
			}
			if len(manifests) == 0 {
				return fmt.Errorf("no objects in %s", strings.Join(files, ", "))
			}
			results := make([]evalResult, 0, len(manifests))
			denied := false
			for _, m := range manifests {
				d, err := eng.Admission(cmd.Context(), policytest.Request(m.Object, opts), bundles.Facts{Now: evalTime})
				if err != nil {
					return fmt.Errorf("%s: %s: %w", m.File, m.Ref(), err)
				}
				denied = denied || !d.Allowed
				results = append(results, evalResult{Object: m.Ref(), File: m.File, Allowed: d.Allowed, Violations: d.Violations, Warnings: d.Warnings})
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(results); err != nil {
					return err
				}
			} else {
				printTable(cmd.OutOrStdout(), results)
			}
			if denied {
				return &exitError{code: exitDenied, err: fmt.Errorf("")}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster whose policy applies (required)")
	cmd.Flags().StringSliceVarP(&files, "filename", "f", nil, "manifest files (YAML or JSON, several documents each; - for stdin)")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: json or table")
	cmd.Flags().StringVar(&opts.Namespace, "namespace", "", "namespace of objects that do not name one (default \"default\")")
	cmd.Flags().StringVar(&opts.Operation, "operation", "CREATE", "admission operation: CREATE, UPDATE or CONNECT")
	cmd.Flags().StringVar(&opts.SubResource, "subresource", "", "subresource, e.g. exec with --operation CONNECT")
	cmd.Flags().StringVar(&opts.User, "user", "", "requesting user")
	cmd.Flags().StringSliceVar(&opts.Groups, "group", nil, "requesting user's groups")
	cmd.Flags().StringVar(&now, "now", "", "evaluation time, RFC 3339 (default: the current time)")
	_ = cmd.MarkFlagRequired("cluster")
	_ = cmd.MarkFlagRequired("filename")
	return cmd
}

// readManifestFile reads a manifest file, every .yaml, .yml and .json file
// of a directory (sorted, not recursive), or stdin for "-".
func readManifestFile(stdin io.Reader, name string) ([]policytest.Manifest, error) {
	if name == "-" {
		return policytest.ReadManifests(stdin, "<stdin>")
	}
	if fi, err := os.Stat(name); err == nil && fi.IsDir() {
		entries, err := os.ReadDir(name)
		if err != nil {
			return nil, err
		}
		var out []policytest.Manifest
		for _, e := range entries {
			switch filepath.Ext(e.Name()) {
			case ".yaml", ".yml", ".json":
				ms, err := readManifestFile(stdin, filepath.Join(name, e.Name()))
				if err != nil {
					return nil, err
				}
				out = append(out, ms...)
			}
		}
		return out, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return policytest.ReadManifests(f, name)
}

func printTable(w io.Writer, results []evalResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OBJECT\tDECISION\tRULE\tACTION\tMESSAGE")
	for _, r := range results {
		decision := "allowed"
		if !r.Allowed {
			decision = "denied"
		}
		if len(r.Violations) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\n", r.Object, decision)
		}
		for i, v := range r.Violations {
			obj, dec := r.Object, decision
			if i > 0 {
				obj, dec = "", ""
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", obj, dec, v.Rule, v.Action, v.Message)
		}
	}
	tw.Flush()
}
