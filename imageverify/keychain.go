package imageverify

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// dockerAuth is one registry's entry in a Docker config.
type dockerAuth struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

// credential is one parsed entry: where it applies and what it sends.
type credential struct {
	host string // host[:port], may hold * wildcards per label
	path string // repository path prefix, "" for the whole registry
	cfg  authn.AuthConfig
}

// dockerKeychain resolves credentials like the kubelet does for
// imagePullSecrets: the most specific matching entry wins, and an
// unknown registry is anonymous.
type dockerKeychain struct {
	creds []credential // most specific first
}

// KeychainFromDockerConfigs builds a keychain from the contents of
// kubernetes.io/dockerconfigjson Secrets ({"auths": {...}}) and legacy
// kubernetes.io/dockercfg ones (the map itself), e.g. a pod's
// imagePullSecrets in order. Keys may be a host, host:port, a URL
// (https://index.docker.io/v1/), a host with a repository path prefix, or
// a wildcard host (*.example.com), as the kubelet accepts them. Registries
// with no entry fall back to anonymous.
//
// Errors name the config by position, never its content.
func KeychainFromDockerConfigs(configs ...[]byte) (authn.Keychain, error) {
	kc := &dockerKeychain{}
	order := 0
	type ranked struct {
		credential
		order int
	}
	var all []ranked
	for i, c := range configs {
		var top map[string]json.RawMessage
		if err := json.Unmarshal(c, &top); err != nil {
			return nil, fmt.Errorf("docker config %d: not a JSON object", i)
		}
		entries := top
		if raw, ok := top["auths"]; ok {
			entries = nil
			if err := json.Unmarshal(raw, &entries); err != nil {
				return nil, fmt.Errorf("docker config %d: auths is not a JSON object", i)
			}
		}
		for key, raw := range entries {
			var a dockerAuth
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, fmt.Errorf("docker config %d: entry %q is not an auth object", i, key)
			}
			cred, err := parseCredential(key, a)
			if err != nil {
				return nil, fmt.Errorf("docker config %d: entry %q: %w", i, key, err)
			}
			all = append(all, ranked{cred, order})
			order++
		}
	}
	// Longer paths first (a repository's own secret over its registry's),
	// then the order the configs were given in; map order within one
	// config is made stable by the key.
	sort.SliceStable(all, func(i, j int) bool {
		if len(all[i].path) != len(all[j].path) {
			return len(all[i].path) > len(all[j].path)
		}
		if all[i].order != all[j].order {
			return all[i].order < all[j].order
		}
		return all[i].host < all[j].host
	})
	for _, r := range all {
		kc.creds = append(kc.creds, r.credential)
	}
	return kc, nil
}

func parseCredential(key string, a dockerAuth) (credential, error) {
	cfg := authn.AuthConfig{
		Username:      a.Username,
		Password:      a.Password,
		IdentityToken: a.IdentityToken,
		RegistryToken: a.RegistryToken,
	}
	if a.Auth != "" {
		raw, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			return credential{}, errors.New("auth is not base64")
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return credential{}, errors.New("auth is not user:password")
		}
		cfg.Username, cfg.Password = user, pass
	}
	k := key
	if strings.Contains(k, "://") {
		u, err := url.Parse(k)
		if err != nil {
			return credential{}, errors.New("not a URL")
		}
		k = u.Host + u.Path
	}
	host, p, _ := strings.Cut(k, "/")
	p = strings.Trim(p, "/")
	// Docker's own keys carry the API version, not a repository.
	if p == "v1" || p == "v2" {
		p = ""
	}
	host = strings.ToLower(host)
	if host == "docker.io" || host == "registry-1.docker.io" {
		host = name.DefaultRegistry
	}
	return credential{host: host, path: p, cfg: cfg}, nil
}

// Resolve returns the credential of the most specific matching entry.
func (k *dockerKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	host := strings.ToLower(r.RegistryStr())
	repo := ""
	if rest, ok := strings.CutPrefix(r.String(), r.RegistryStr()+"/"); ok {
		repo = rest
	}
	for _, c := range k.creds {
		if !hostMatches(c.host, host) {
			continue
		}
		if c.path != "" && repo != c.path && !strings.HasPrefix(repo, c.path+"/") {
			continue
		}
		return authn.FromConfig(c.cfg), nil
	}
	return authn.Anonymous, nil
}

// hostMatches compares host[:port] patterns label by label, '*' matching
// within one label, as the kubelet's credential provider does.
func hostMatches(pattern, host string) bool {
	pHost, pPort := splitPort(pattern)
	hHost, hPort := splitPort(host)
	if pPort != hPort {
		return false
	}
	pl, hl := strings.Split(pHost, "."), strings.Split(hHost, ".")
	if len(pl) != len(hl) {
		return false
	}
	for i := range pl {
		if ok, err := path.Match(pl[i], hl[i]); err != nil || !ok {
			return false
		}
	}
	return true
}

// splitPort splits host[:port], an IPv6 literal in brackets included.
func splitPort(s string) (string, string) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 || i < strings.LastIndexByte(s, ']') {
		return s, ""
	}
	return s[:i], s[i+1:]
}
