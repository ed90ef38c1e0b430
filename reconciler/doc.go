// Package reconciler follows a policy repository and turns every good
// commit into served bundles.
//
// A pass fetches the followed ref (Source), loads and validates the
// commit's tree, builds one bundle per cluster named in the repository
// (revision = commit SHA), compiles one of them (the Rego library is the
// same in all) and publishes the set atomically (Publisher). A commit that
// fails anywhere before publishing never replaces what is served: the last
// good bundles keep serving and the error, with file:line:col for policy
// mistakes, is recorded in the Status and counted in metrics.
//
// Passes run at start, on an interval (default 1m) and immediately when the
// push webhook (POST /hooks/git, HMAC-authenticated, Gitea/GitHub/GitLab
// payloads) reports a push to the followed ref. Passes never overlap; a
// trigger during a pass causes exactly one more pass.
package reconciler
