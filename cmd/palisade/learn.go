package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/palisade-dev/palisade/internal/certpool"
	"github.com/palisade-dev/palisade/learning/service"
)

// learnFlags reach the controller's learning API.
type learnFlags struct {
	controller, tokenFile, caFile string
	timeout                       time.Duration
}

func learnCmd() *cobra.Command {
	var f learnFlags
	cmd := &cobra.Command{
		Use:   "learn",
		Short: "Learning mode: propose learned rules, show profiles",
		Long: `Learning mode: propose learned rules, show profiles.

Rulesets in mode learning collect the behaviour of the workloads they
select. "palisade learn propose RULESET" asks the controller to turn the
profile into learned/<RULESET>.yaml and open (or update) a pull request
that also sets the ruleset's mode to audit. "palisade learn status" shows,
per ruleset: mode, workloads observed, profile size, last new behaviour
and the proposal's pull request.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.controller, "controller", "http://127.0.0.1:8443", "controller URL")
	pf.StringVar(&f.tokenFile, "token-file", "", "file holding the controller's learning API token")
	pf.StringVar(&f.caFile, "ca-file", "", "CA (PEM) of the controller's certificate")
	pf.DurationVar(&f.timeout, "timeout", 2*time.Minute, "how long to wait for the controller")
	cmd.AddCommand(&cobra.Command{
		Use:   "propose RULESET",
		Short: "Open or update the pull request of a ruleset's learned rules",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out service.Outcome
			if err := f.call(cmd, http.MethodPost, "/learning/v1/propose?ruleset="+url.QueryEscape(args[0]), &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: pull request #%d %s (%d rules): %s\n", args[0], out.Number, out.Action, out.Rules, out.URL)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "Show each ruleset's mode, profile and proposal",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st []service.RulesetStatus
			if err := f.call(cmd, http.MethodGet, "/learning/v1/rulesets", &st); err != nil {
				return err
			}
			writeLearnStatus(cmd.OutOrStdout(), st)
			return nil
		},
	})
	return cmd
}

func writeLearnStatus(w io.Writer, st []service.RulesetStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULESET\tMODE\tWORKLOADS\tBEHAVIOURS\tLAST NEW\tSTABLE\tPULL REQUEST")
	for _, s := range st {
		last, pr := "-", "-"
		if s.LastNew != nil {
			last = s.LastNew.UTC().Format(time.RFC3339)
		}
		if s.Proposal != nil && s.Proposal.URL != "" {
			pr = s.Proposal.URL + " (" + s.Proposal.Action + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%t\t%s\n", s.Ruleset, s.Mode, s.Workloads, s.Behaviours, last, s.Stable, pr)
	}
	_ = tw.Flush()
}

// call sends one request to the controller's learning API and decodes
// the JSON answer; an error answer becomes the command's error.
func (f learnFlags) call(cmd *cobra.Command, method, path string, into any) error {
	client := &http.Client{Timeout: f.timeout}
	if f.caFile != "" {
		pool, err := certpool.FromFile(f.caFile)
		if err != nil {
			return fmt.Errorf("--ca-file: %w", err)
		}
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}}
	}
	token, err := readSecretFile("token-file", f.tokenFile)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(cmd.Context(), method, strings.TrimSuffix(f.controller, "/")+path, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("controller: %s", e.Error)
		}
		return fmt.Errorf("controller: %s", resp.Status)
	}
	return json.Unmarshal(body, into)
}
