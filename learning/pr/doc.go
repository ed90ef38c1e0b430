// Package pr proposes a change to the policy repository as a pull request:
// it commits the files of a Change with go-git on top of the base branch,
// force-pushes them to a branch of Palisade's own
// (palisade/learn/<ruleset>), and opens or edits the pull request through
// a forge.Forge. Publishing the same change again is idempotent.
//
// What Publish does, in order:
//   - clone the base branch (shallow, in memory: nothing is written to
//     disk) and call Change.Files with a reader of the base tree;
//   - if the base already holds those contents: UpToDate, nothing else;
//   - an open pull request of Branch into Base whose content key equals
//     this change's: Unchanged (its title and body are edited in place,
//     Updated, if only they differ); no push;
//   - a pull request closed unmerged with this content key: Declined,
//     nothing pushed, opened or edited (even when another proposal is
//     open: a human said no to exactly this content; reopening that pull
//     request in the forge is how to change one's mind);
//   - an open pull request with other content: force-push, edit its title
//     and body in place: Updated. There is never a second open one;
//   - otherwise force-push and open one: Created.
//
// The memory of what was proposed lives in the forge, so it survives any
// restart: the body of every pull request ends with a marker
//
//	<!-- palisade-learn ruleset="<ruleset>" content=<sha256> -->
//
// whose content is ContentKey of the files proposed (paths and contents,
// not the commit, which changes with the base and the time).
//
// Decisions:
//   - The branch is Palisade's: a force-push replaces whatever a human
//     pushed to it. The base branch is never pushed to: the only refspec
//     pushed is refs/heads/<Branch>, and Branch may not equal Base.
//   - Only pull requests into Change.Base count (a pull request of the
//     same branch into another base is left alone).
//   - Change.Files returns full contents; a nil value deletes the file.
//     Paths are slash-separated, relative, without "." or ".." elements
//     and outside .git.
//   - A pull request whose marker a human removed is treated as holding
//     other content: the next Publish pushes and restores the marker.
package pr
