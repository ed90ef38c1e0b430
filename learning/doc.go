// Package learning turns behaviour observed in learning mode into
// proposed allow rules: sensors summarise what learning rulesets observe
// per workload and send batches to the controller, which merges them into
// persisted behaviour profiles, generalises a stable profile into D4C
// rules (learned/<ruleset>.yaml) and proposes them as a pull request.
//
// The pieces:
//
//   - Aggregator and Sender (on the node): per batch interval, one
//     Observed per (ruleset, workload, behaviour) with counts, first and
//     last seen and a few sample pods; batches are resent until the
//     controller acknowledges them, and flushed once more on shutdown.
//   - Store, NewHandler and the Authenticators (in the controller):
//     batches are applied once each (by id) and made durable before they
//     are acknowledged.
//   - Generalise, RenderLearned, RenderBody and SetMode: a profile becomes
//     a Proposal, the learned file, the pull request body and the
//     ruleset's next mode. Generalise's documentation lists every
//     generalisation rule and why.
//
// Where profiles live, and why: in the controller's Store directory, a
// PersistentVolume (an append-only journal of applied batches, fsynced
// before each acknowledgement, compacted into a snapshot). The
// controller is a single replica, so a local volume is enough, and it is
// the right place: profiles grow with every batch, and etcd is not
// (objects are limited to 1 MiB, and every write is a new revision that
// etcd keeps until compaction: the way other tools filled etcd with
// reports). A controller restart replays the journal; a sensor restart
// loses nothing it flushed; a lost acknowledgement makes the sensor
// resend a batch the store then recognises by its id.
//
// The learned rules' meaning is the policy package's (LearnedRules: each
// workload's entries become selectors added to the exclude list of every
// response of the ruleset's section), so Rego and the sensor's native
// matcher see ordinary selectors.
package learning
