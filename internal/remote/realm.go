package remote

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/auth"
)

// realmGuard keeps a registry's credentials from a token server that would
// receive them in the clear: a Bearer challenge whose realm is plain HTTP
// on another origin than the registry's. containerd's authorizer sends the
// registry's user name and password to whatever realm the registry names.
// --plain-http (talk HTTP to every registry) lets them through, as the user
// asked for plain HTTP everywhere; anonymous tokens always go through.
type realmGuard struct {
	docker.Authorizer
	plainHTTP bool
	creds     func(host string) (string, string, error)
}

func (g *realmGuard) AddResponses(ctx context.Context, responses []*http.Response) error {
	if len(responses) > 0 && !g.plainHTTP {
		if err := g.check(responses[len(responses)-1]); err != nil {
			return err
		}
	}
	return g.Authorizer.AddResponses(ctx, responses)
}

func (g *realmGuard) check(last *http.Response) error {
	if last.Request == nil || last.Request.URL == nil {
		return nil
	}
	registry := last.Request.URL
	for _, c := range auth.ParseAuthHeader(last.Header) {
		if c.Scheme != auth.BearerAuth {
			continue
		}
		realm, err := url.Parse(c.Parameters["realm"])
		if err != nil || realm.Scheme == "https" || sameOrigin(realm.Scheme, realm.Host, registry.Scheme, registry.Host) {
			continue
		}
		if user, secret, _ := g.creds(registry.Host); user == "" && secret == "" {
			continue
		}
		return fmt.Errorf("registry %s sends its credentials to the token server %s://%s over plain HTTP: refusing; make the token server HTTPS, or pass --plain-http if plain HTTP everywhere is intended",
			registry.Host, realm.Scheme, realm.Host)
	}
	return nil
}
