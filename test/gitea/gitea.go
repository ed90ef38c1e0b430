package gitea

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/palisade-dev/palisade/internal/toolcache"
)

// EnvBinDir names the directory holding the gitea binary and its
// options/, templates/ and public/; it overrides the cache directory that
// hack/build-gitea.sh --print-dir names.
const EnvBinDir = "PALISADE_GITEA_DIR"

// buildScript prints the cache directory with --print-dir, relative to the
// repository root.
const buildScript = "hack/build-gitea.sh"

// Username is the admin user Start creates ('admin' is reserved by Gitea).
const Username = "palisade-admin"

// Server is a running Gitea.
type Server struct {
	// URL is the server's root, without a trailing slash:
	// http://127.0.0.1:<port>.
	URL string
	// Username, Password and Token are the admin user's credentials; the
	// token has every scope.
	Username, Password, Token string
	// Dir holds app.ini, the database, the repositories and gitea.log.
	Dir string

	cmd  *exec.Cmd
	done chan struct{}
	http *http.Client
}

var binDir = sync.OnceValues(func() (string, error) {
	dir, err := toolcache.Dir(EnvBinDir, buildScript)
	if err != nil {
		return "", err
	}
	for _, p := range []string{"gitea", "options", "templates"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			return "", fmt.Errorf("no Gitea in %s (%v): run make gitea-bin", dir, err)
		}
	}
	return dir, nil
})

// BinDir returns the directory of the gitea binary: $PALISADE_GITEA_DIR,
// or the cache that `make gitea-bin` fills. It returns an error saying to
// run `make gitea-bin` when the binary is missing there.
func BinDir() (string, error) { return binDir() }

// appIni is the whole configuration: everything Gitea would otherwise
// start in the background (mailer, SSH, indexers, cron, actions, update
// checks, avatars from the network) is off, so that it starts in seconds
// and touches nothing outside Dir and loopback.
var appIni = template.Must(template.New("app.ini").Parse(`APP_NAME = palisade-test
RUN_USER = {{.User}}
RUN_MODE = prod
WORK_PATH = {{.Dir}}

[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = {{.Port}}
DOMAIN = 127.0.0.1
ROOT_URL = http://127.0.0.1:{{.Port}}/
APP_DATA_PATH = {{.Dir}}/data
STATIC_ROOT_PATH = {{.Static}}
OFFLINE_MODE = true
DISABLE_SSH = true
START_SSH_SERVER = false
LFS_START_SERVER = false

[database]
DB_TYPE = sqlite3
PATH = {{.Dir}}/data/gitea.db
SQLITE_JOURNAL_MODE = WAL

[repository]
ROOT = {{.Dir}}/repositories
DEFAULT_BRANCH = main

[security]
INSTALL_LOCK = true
SECRET_KEY = {{.Secret}}
; Fast hashing: the passwords are throwaway, and basic auth hashes per request.
PASSWORD_HASH_ALGO = pbkdf2_v2
PASSWORD_COMPLEXITY = off
MIN_PASSWORD_LENGTH = 8

[service]
DISABLE_REGISTRATION = true
REGISTER_EMAIL_CONFIRM = false
ENABLE_NOTIFY_MAIL = false
DEFAULT_KEEP_EMAIL_PRIVATE = true
NO_REPLY_ADDRESS = noreply.127.0.0.1

[mailer]
ENABLED = false

[oauth2]
ENABLED = false

[queue]
TYPE = channel

[indexer]
ISSUE_INDEXER_TYPE = db
REPO_INDEXER_ENABLED = false

[session]
PROVIDER = memory

[cache]
ADAPTER = memory

[cron]
ENABLED = false

[cron.update_checker]
ENABLED = false

[actions]
ENABLED = false

[picture]
DISABLE_GRAVATAR = true
ENABLE_FEDERATED_AVATAR = false

[log]
MODE = console
LEVEL = Info
ROOT_PATH = {{.Dir}}/log
`))

// Start starts a Gitea of the test's own, with an admin user, and stops
// it (the whole process group) when the test ends. It fails the test,
// never skips it, when the binary is missing or the server does not
// answer within a minute.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := BinDir()
	if err != nil {
		t.Fatalf("start gitea: %v", err)
	}
	s, err := launch(bin, t.TempDir())
	if s != nil {
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("gitea log (tail):\n%s", s.LogTail())
			}
			s.Stop()
		})
	}
	if err != nil {
		t.Fatalf("start gitea: %v", err)
	}
	return s
}

func launch(bin, dir string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	var ini bytes.Buffer
	err = appIni.Execute(&ini, map[string]any{
		"User": u.Username, "Dir": dir, "Port": port, "Static": bin, "Secret": randomHex(32),
	})
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "app.ini")
	if err := os.WriteFile(conf, ini.Bytes(), 0o600); err != nil {
		return nil, err
	}
	s := &Server{
		URL:      "http://127.0.0.1:" + strconv.Itoa(port),
		Username: Username,
		Password: "pw-" + randomHex(12),
		Dir:      dir,
		done:     make(chan struct{}),
		http:     &http.Client{Timeout: 30 * time.Second},
	}
	logFile, err := os.Create(filepath.Join(dir, "gitea.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	s.cmd = exec.Command(filepath.Join(bin, "gitea"), "web", "--config", conf, "--work-path", dir)
	s.cmd.Dir = dir
	s.cmd.Env = s.env(bin)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.SysProcAttr = sysProcAttr()
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("run gitea: %w", err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	if err := s.waitReady(time.Minute); err != nil {
		return s, err
	}
	if err := s.createAdmin(bin, conf); err != nil {
		return s, err
	}
	return s, nil
}

// env is Gitea's environment: the test's, with HOME inside Dir (Gitea
// writes a .gitconfig there) and root allowed.
func (s *Server) env(bin string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GITEA_") || strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "GIT_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"HOME="+s.Dir,
		"GITEA_WORK_DIR="+s.Dir,
		"GITEA_CUSTOM="+filepath.Join(s.Dir, "custom"),
		"GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT=true",
	)
}

func (s *Server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := s.http.Get(s.URL + "/api/v1/version")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("gitea exited before it answered: %v", s.cmd.ProcessState)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gitea did not answer on %s within %v", s.URL, timeout)
		}
	}
}

var tokenLine = regexp.MustCompile(`Access token was successfully created\.\.\. ([0-9a-f]+)`)

func (s *Server) createAdmin(bin, conf string) error {
	cmd := exec.Command(filepath.Join(bin, "gitea"), "admin", "user", "create",
		"--config", conf, "--work-path", s.Dir,
		"--admin", "--username", s.Username, "--password", s.Password,
		"--email", s.Username+"@example.invalid", "--must-change-password=false",
		"--access-token", "--access-token-name", "palisade-test", "--access-token-scopes", "all")
	cmd.Dir = s.Dir
	cmd.Env = s.env(bin)
	out, err := cmd.CombinedOutput()
	m := tokenLine.FindSubmatch(out)
	if err != nil || m == nil {
		// The output holds no secret but the token, which was not found.
		return fmt.Errorf("gitea admin user create: %v: %s", err, out)
	}
	s.Token = string(m[1])
	return nil
}

// Stop kills Gitea's process group and waits for Gitea to exit.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.done
	}
	// Whatever Gitea left running in its group (git children) goes too,
	// and so do the git commands it ran in groups of their own.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	killWorkingIn(s.Dir)
}

// LogTail returns the last lines of Gitea's log.
func (s *Server) LogTail() string {
	raw, err := os.ReadFile(filepath.Join(s.Dir, "gitea.log"))
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}

// TokenFile writes the admin's token to a file of the test's and returns
// its path, for code that reads credentials from files.
func (s *Server) TokenFile(t testing.TB) string {
	t.Helper()
	return s.secretFile(t, "token", s.Token)
}

// PasswordFile writes the admin's password to a file of the test's and
// returns its path.
func (s *Server) PasswordFile(t testing.TB) string {
	t.Helper()
	return s.secretFile(t, "password", s.Password)
}

func (s *Server) secretFile(t testing.TB, name, secret string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// errStatus is an API answer with an unexpected status.
type errStatus struct {
	method, path string
	code         int
	body         string
}

func (e *errStatus) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.method, e.path, e.code, e.body)
}

// IsNotFound reports whether err is an API answer of 404.
func IsNotFound(err error) bool {
	var e *errStatus
	return errors.As(err, &e) && e.code == http.StatusNotFound
}
