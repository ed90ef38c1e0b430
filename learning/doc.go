// Package learning turns behaviour observed in learning mode into
// proposed allow rules: sensors summarise what learning rulesets observe
// per workload and send batches to the controller, which merges them into
// persisted behaviour profiles, generalises a stable profile into D4C
// rules (learned/<ruleset>.yaml) and proposes them as a pull request.
package learning
