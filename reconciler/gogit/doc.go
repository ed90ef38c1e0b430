// Package gogit is the Git source of the reconciler, built on
// github.com/go-git/go-git/v5: the only package that imports go-git.
//
// It keeps a bare repository in its working directory and fetches only the
// followed ref, shallowly (depth 1) unless a commit is pinned. Policy is
// read straight from the commit's tree objects, never checked out, so the
// source writes nothing outside its working directory whatever the
// repository holds, and symbolic links in the repository are never
// followed (they read as non-regular files, which the policy loader skips).
package gogit
