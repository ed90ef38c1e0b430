// Package toolcache finds the directories that the hack/build-*.sh
// scripts fill with the real test components (kube-apiserver and etcd,
// Gitea, the VM's kernel, ...): an environment variable overrides the
// directory, else the script's --print-dir answers.
package toolcache

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Dir returns $env when it is set, else the directory that `bash <root>/
// <script> --print-dir` prints, where root is the repository root: the
// nearest directory at or above the working directory (a test's package
// directory) that holds script. It does not check what the directory
// holds: each caller checks its own files and says which make target
// fills them.
func Dir(env, script string) (string, error) {
	if dir := os.Getenv(env); dir != "" {
		return dir, nil
	}
	root, err := repoRoot(script)
	if err != nil {
		return "", fmt.Errorf("%w; set %s", err, env)
	}
	out, err := exec.Command("bash", filepath.Join(root, script), "--print-dir").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			return "", fmt.Errorf("%s --print-dir: %w: %s", script, err, strings.TrimSpace(string(ee.Stderr)))
		}
		return "", fmt.Errorf("%s --print-dir: %w", script, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// repoRoot walks up from the working directory to the directory holding
// script.
func repoRoot(script string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, script)); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no %s above the working directory", script)
		}
		dir = parent
	}
}
