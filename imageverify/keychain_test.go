package imageverify_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/palisade-dev/palisade/imageverify"
	ivt "github.com/palisade-dev/palisade/imageverify/imageverifytest"
)

func dockerConfigJSON(host, user, password string) []byte {
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	return fmt.Appendf(nil, `{"auths":{%q:{"auth":%q}}}`, host, auth)
}

func TestImagePullSecretsAgainstBasicAuthRegistry(t *testing.T) {
	creds := ivt.WithBasicAuth("puller", "s3cret")
	host := ivt.StartRegistry(t, creds)
	ref, _ := ivt.PushRandomImage(t, host, "private/app", "v1", creds)
	key := ivt.NewKeySigner(t, ivt.ECDSAP256)
	ivt.SignImage(t, ref, key, creds)
	att := keyAttestor(t, "release", key)
	fx := newFixture(t)

	// A pod without pull secrets: the registry refuses, a fact.
	f := fx.verifyWith(t, ref, nil, att)
	if f.Error == "" {
		t.Fatalf("facts %+v, want an authentication error", f)
	}

	// A pod with the Secret: verified at once (the 401 above was not
	// cached for everyone).
	kc, err := imageverify.KeychainFromDockerConfigs(
		[]byte(`{"auths":{"other.example":{"username":"x","password":"y"}}}`),
		dockerConfigJSON(host, "puller", "s3cret"),
	)
	if err != nil {
		t.Fatal(err)
	}
	wantVerified(t, fx.verifyWith(t, ref, kc, att), "release")

	// Wrong password: an error again.
	bad, err := imageverify.KeychainFromDockerConfigs(dockerConfigJSON(host, "puller", "wrong"))
	if err != nil {
		t.Fatal(err)
	}
	if f := newFixture(t).verifyWith(t, ref, bad, att); f.Error == "" {
		t.Fatalf("facts %+v with a wrong password, want an error", f)
	}
}

func TestKeychainFromDockerConfigs(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	configs := [][]byte{
		// kubernetes.io/dockerconfigjson
		fmt.Appendf(nil, `{"auths":{
			"https://index.docker.io/v1/": {"auth": %q},
			"registry.example.com:5000": {"username": "port", "password": "p"},
			"registry.example.com/team-a": {"auth": %q},
			"*.wild.example": {"auth": %q},
			"token.example": {"identitytoken": "refresh-me"}
		}}`, b64("hub:h"), b64("team-a:a"), b64("wild:w")),
		// kubernetes.io/dockercfg: the map itself
		fmt.Appendf(nil, `{"registry.example.com": {"auth": %q}}`, b64("registry:r")),
	}
	kc, err := imageverify.KeychainFromDockerConfigs(configs...)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		repo string
		want authn.AuthConfig // zero: anonymous
	}{
		{"nginx", authn.AuthConfig{Username: "hub", Password: "h"}},
		{"docker.io/library/nginx", authn.AuthConfig{Username: "hub", Password: "h"}},
		{"registry.example.com:5000/app", authn.AuthConfig{Username: "port", Password: "p"}},
		{"registry.example.com/team-a/app", authn.AuthConfig{Username: "team-a", Password: "a"}},
		{"registry.example.com/team-ab/app", authn.AuthConfig{Username: "registry", Password: "r"}},
		{"registry.example.com/team-b/app", authn.AuthConfig{Username: "registry", Password: "r"}},
		{"eu.wild.example/app", authn.AuthConfig{Username: "wild", Password: "w"}},
		{"a.eu.wild.example/app", authn.AuthConfig{}},
		{"token.example/app", authn.AuthConfig{IdentityToken: "refresh-me"}},
		{"unknown.example/app", authn.AuthConfig{}},
	} {
		t.Run(tc.repo, func(t *testing.T) {
			repo, err := name.NewRepository(tc.repo)
			if err != nil {
				t.Fatal(err)
			}
			auth, err := kc.Resolve(repo)
			if err != nil {
				t.Fatal(err)
			}
			got, err := auth.Authorization()
			if err != nil {
				t.Fatal(err)
			}
			if *got != tc.want {
				t.Errorf("got %+v, want %+v", *got, tc.want)
			}
		})
	}
}

func TestKeychainErrorsDoNotEchoSecrets(t *testing.T) {
	for _, c := range []string{
		`not json s3cret`,
		`{"auths": "s3cret"}`,
		`{"auths": {"r.example": {"auth": "!!s3cret!!"}}}`,
		`{"auths": {"r.example": {"auth": "` + base64.StdEncoding.EncodeToString([]byte("nocolons3cret")) + `"}}}`,
	} {
		_, err := imageverify.KeychainFromDockerConfigs([]byte(c))
		if err == nil {
			t.Errorf("%s: no error", c)
			continue
		}
		if s := err.Error(); strings.Contains(s, "s3cret") {
			t.Errorf("error %q repeats the secret", s)
		}
	}
}
