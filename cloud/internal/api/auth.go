package api

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"homeport.dev/cloud/internal/account"
	"homeport.dev/cloud/internal/homeauth"
	"homeport.dev/cloud/internal/problem"
	"homeport.dev/cloud/internal/store"
	"homeport.dev/proto"
	wire "homeport.dev/proto/homeauth"
)

// authLevel is who may call a route.
type authLevel int

const (
	authNone authLevel = iota
	// authUser: an account API token.
	authUser
	// authHome: an account API token, or a home's own credential (a request
	// signed with its SSH key) acting on that home only.
	authHome
	authAdmin
)

// principal is the authenticated caller: always the owning account, and the
// home when the home's credential signed the request.
type principal struct {
	user store.User
	home *store.Home
}

const principalKey = "homeport.principal"

// errNeedsToken refuses a home credential on a route only the account may use.
const errNeedsToken = "this needs an account API token; a home's credential acts only on its own home"

// require authenticates the caller (an API token, or a signed home request)
// and refuses a home credential below authHome. The identity it sets is the
// only one handlers ever use.
func (s *Server) require(level authLevel, next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := s.authenticate(c)
		if err != nil {
			return err
		}
		if p.home != nil && level != authHome {
			return problem.New(problem.Forbidden, errNeedsToken)
		}
		if changes(c.Request().Method) && !s.Writes.AllowWrite(p.user.ID) {
			c.Response().Header().Set("Retry-After", "10")
			return problem.New(problem.RateLimited, "this account made too many changes in the last minute (--write-rate); try again shortly")
		}
		c.Set(principalKey, p)
		setActor(c, auditActor(c, p, level))
		return next(c)
	}
}

// changes reports whether a request of this method changes state.
func changes(method string) bool {
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions
}

func (s *Server) authenticate(c echo.Context) (principal, error) {
	h := c.Request().Header.Get("Authorization")
	if strings.HasPrefix(h, wire.Scheme+" ") {
		return s.authenticateHome(c, h)
	}
	secret, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || secret == "" {
		return principal{}, problem.New(problem.Unauthorized, "send an API token as Authorization: Bearer <token>; get one with POST /api/v1/auth/token (a home signs its requests: Authorization: %s)", wire.Scheme)
	}
	u, err := s.Accounts.UserByToken(c.Request().Context(), strings.TrimSpace(secret))
	return principal{user: u}, err
}

// authenticateHome verifies a request signed with a home's key. The body is
// part of what is signed: it is read (bounded) and put back for the handler.
func (s *Server) authenticateHome(c echo.Context, header string) (principal, error) {
	r, err := wire.Parse(header)
	if err != nil {
		return principal{}, problem.New(problem.Unauthorized, "%v", err)
	}
	req := c.Request()
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		if body, err = io.ReadAll(io.LimitReader(req.Body, wire.MaxBody+1)); err != nil {
			return principal{}, err // the API's body limit (413)
		}
		if len(body) > wire.MaxBody {
			return principal{}, echo.ErrStatusRequestEntityTooLarge
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	uri := req.RequestURI
	if uri == "" {
		uri = req.URL.RequestURI()
	}
	h, err := s.homeAuth.Verify(req.Context(), r, req.Method, uri, body)
	if busy, ok := homeauth.IsBusy(err); ok {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(busy.RetryAfter.Seconds()+0.5)))
		return principal{}, echo.NewHTTPError(http.StatusTooManyRequests, busy.Message)
	}
	if err != nil {
		return principal{}, err
	}
	return principal{user: h.User, home: &h}, nil
}

// requireCan refuses the caller unless their role has capability need
// (account.Can, the one table of who may do what). Behind require: for a
// home's credential the role is its owner's.
func (s *Server) requireCan(need account.Capability, next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := account.Need(caller(c).Role, need); err != nil {
			return err
		}
		return next(c)
	}
}

// adminActions are the capabilities of the admin routes that change
// something; an admin route that only reads needs account.ReadAdmin. New
// panics on a changing admin route missing here, so none gets a default.
var adminActions = map[string]account.Capability{
	"POST /admin/users/:username/approve":        account.ApproveUsers,
	"POST /admin/users/:username/deactivate":     account.ApproveUsers,
	"POST /admin/users/:username/role":           account.ManageRoles,
	"POST /admin/users/:username/password-reset": account.ManageUsers,
	"DELETE /admin/users/:username":              account.ManageUsers,
	"POST /admin/invitations":                    account.ManageUsers,
	"DELETE /admin/invitations/:id":              account.ManageUsers,
	"DELETE /admin/homes/:slug":                  account.ReleaseAny,
	"POST /admin/reconcile":                      account.ReleaseAny,
	"POST /admin/homes/:slug/edge":               account.ReleaseAny,
}

// needs is the capability a route asks of its caller ("" for anonymous
// routes): reading one's own things needs ReadOwn, changing them
// ManageOwn (one's tokens: OwnTokens), admin routes ReadAdmin or their
// adminActions entry.
func needs(r route) (account.Capability, error) {
	read := r.method == http.MethodGet || r.method == http.MethodHead
	switch {
	case r.auth == authNone:
		return "", nil
	case r.auth == authAdmin && read:
		return account.ReadAdmin, nil
	case r.auth == authAdmin:
		c, ok := adminActions[r.method+" "+strings.TrimPrefix(r.path, proto.APIPrefix)]
		if !ok {
			return "", fmt.Errorf("api: admin route %s %s has no capability in adminActions", r.method, r.path)
		}
		return c, nil
	case read:
		return account.ReadOwn, nil
	case strings.HasPrefix(r.path, proto.APIPrefix+"/tokens"):
		return account.OwnTokens, nil
	}
	return account.ManageOwn, nil
}

// caller is the account acting: the token's user, or the signing home's owner.
func caller(c echo.Context) store.User {
	p, _ := c.Get(principalKey).(principal)
	return p.user
}

// callingHome is the home whose credential signed the request, if one did.
func callingHome(c echo.Context) (store.Home, bool) {
	p, _ := c.Get(principalKey).(principal)
	if p.home == nil {
		return store.Home{}, false
	}
	return *p.home, true
}
