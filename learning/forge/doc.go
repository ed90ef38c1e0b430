// Package forge opens and edits pull requests on the Git forge that hosts
// the policy repository: Gitea, GitHub or GitLab (where they are merge
// requests), through each forge's maintained Go client. It is the only
// package that imports those clients.
//
// Forge is the seam learning/pr needs for an idempotent proposal: find
// the pull requests of a head branch (open and closed), create one, edit
// one's title and body, and read a branch's commit (so that a pull
// request is opened only once the forge has seen a push).
//
// Decisions:
//   - One package with three implementations (NewGitea, NewGitHub,
//     NewGitLab) and New choosing by Options.Kind, rather than one
//     subpackage per forge: the three are small, and callers configure a
//     forge by name.
//   - Only pull requests whose head branch lives in the repository itself
//     are returned: a fork's branch of the same name (and whatever its
//     body claims) is not ours.
//   - The token is read from a file, once, and sent only in the
//     Authorization header. Errors never contain it: every error leaving
//     this package has it replaced by "[redacted]", whatever the client
//     library put in its message.
//   - Every request has a timeout (Options.Timeout, 30 s by default) on
//     top of the caller's context.
package forge
