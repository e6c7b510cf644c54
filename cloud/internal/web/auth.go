package web

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"homeport.dev/cloud/internal/account"
	"homeport.dev/cloud/internal/problem"
)

// csrf checks a per-browser token on every state-changing request (the
// double-submit cookie, or Sec-Fetch-Site: same-origin from browsers that
// send it). A refusal is a 403, whatever the cause.
func (w *ui) csrf() echo.MiddlewareFunc {
	conf := func(secure bool) echo.MiddlewareFunc {
		return middleware.CSRFWithConfig(middleware.CSRFConfig{
			TokenLookup:    "form:" + csrfField,
			ContextKey:     ctxCSRF,
			CookieName:     csrfCookie,
			CookiePath:     "/",
			CookieHTTPOnly: true,
			CookieSecure:   secure,
			CookieSameSite: http.SameSiteLaxMode,
			ErrorHandler: func(error, echo.Context) error {
				return echo.NewHTTPError(http.StatusForbidden, "invalid or missing CSRF token")
			},
		})
	}
	plain, secure := conf(false), conf(true)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		p, s := plain(next), secure(next)
		return func(c echo.Context) error {
			if w.secure(c) {
				return s(c)
			}
			return p(c)
		}
	}
}

// session resolves the session cookie to the logged-in user, if any. A
// stale cookie (expired, logged out, account deactivated) is cleared.
func (w *ui) session(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ck, err := c.Cookie(sessionCookie)
		if err != nil || ck.Value == "" {
			return next(c)
		}
		u, err := w.Accounts.UserBySession(ctx(c), ck.Value)
		switch problem.KindOf(err) {
		case 0:
			if err != nil {
				return err
			}
			c.Set(ctxUser, u)
		case problem.Unauthorized, problem.Inactive:
			w.setSession(c, "")
		default:
			return err
		}
		return next(c)
	}
}

// requireUser sends anonymous visitors to the login page.
func (w *ui) requireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Get(ctxUser) == nil {
			return c.Redirect(http.StatusSeeOther, "/login")
		}
		if c.Request().Method == http.MethodPost && w.Writes != nil && !w.Writes.AllowWrite(currentUser(c).ID) {
			c.Response().Header().Set("Retry-After", "10")
			return problem.New(problem.RateLimited, "your account made too many changes in the last minute; try again shortly")
		}
		return next(c)
	}
}

// requireCan answers the 403 page unless the user's role has capability
// need (account.Can, the table the API uses too).
func (w *ui) requireCan(need account.Capability) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if err := account.Need(currentUser(c).Role, need); err != nil {
				return err
			}
			return next(c)
		}
	}
}

// setSession sets the session cookie, or clears it when secret is empty.
func (w *ui) setSession(c echo.Context, secret string) {
	ck := &http.Cookie{
		Name: sessionCookie, Value: secret, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: w.secure(c),
		MaxAge: int(account.SessionTTL.Seconds()),
	}
	if secret == "" {
		ck.MaxAge = -1
	}
	c.SetCookie(ck)
}

// rateLimit refuses a login or signup attempt beyond the per-address and
// per-username budget; it renders nothing, the caller shows the form.
func (w *ui) rateLimit(c echo.Context, username string) error {
	if !w.Limiter.Allow("ip:"+c.RealIP(), "user:"+username) {
		c.Response().Header().Set("Retry-After", "60")
		return errTooMany
	}
	return nil
}

var errTooMany = &problem.Error{Kind: problem.Quota, Message: "too many attempts; wait a minute and try again"}

func (w *ui) landing(c echo.Context) error {
	if c.Get(ctxUser) != nil {
		return c.Redirect(http.StatusSeeOther, "/dashboard")
	}
	return w.render(c, http.StatusOK, "landing", page{Title: "homeport"})
}

// signupView tells the signup page what --signup allows.
type signupView struct {
	Mode   string
	Closed string // why no account can be made here; "" when one can
}

func (w *ui) signupPage(fe *formError) page {
	_, err := account.SignupActive(w.Signup)
	v := signupView{Mode: w.Signup}
	if err != nil {
		v.Closed = err.Error()
	}
	return page{Title: "Sign up", Err: fe, Data: v}
}

func (w *ui) signupForm(c echo.Context) error {
	return w.render(c, http.StatusOK, "signup", w.signupPage(nil))
}

func (w *ui) signup(c echo.Context) error {
	name := strings.TrimSpace(c.FormValue("username"))
	show := func(fe *formError) error {
		return w.render(c, fe.Status, "signup", w.signupPage(fe))
	}
	active, err := account.SignupActive(w.Signup)
	if err != nil {
		return w.refused(c, "signup", err, show)
	}
	if err := w.rateLimit(c, name); err != nil {
		return w.refused(c, "signup", err, show)
	}
	u, err := w.Accounts.Create(ctx(c), account.NewUser{
		Username: name, Email: c.FormValue("email"), Password: c.FormValue("password"), Active: active,
	})
	if err != nil {
		return w.refused(c, "signup", err, show)
	}
	return w.render(c, http.StatusCreated, "signup_done", page{Title: "Account created", Data: u})
}

func (w *ui) loginForm(c echo.Context) error {
	if c.Get(ctxUser) != nil {
		return c.Redirect(http.StatusSeeOther, "/dashboard")
	}
	return w.render(c, http.StatusOK, "login", page{Title: "Log in"})
}

func (w *ui) login(c echo.Context) error {
	name := strings.TrimSpace(c.FormValue("username"))
	show := func(fe *formError) error {
		return w.render(c, fe.Status, "login", page{Title: "Log in", Err: fe})
	}
	if err := w.rateLimit(c, name); err != nil {
		return w.refused(c, "login", err, show)
	}
	u, err := w.Accounts.Authenticate(ctx(c), name, c.FormValue("password"))
	if err != nil {
		return w.refused(c, "login", err, show)
	}
	secret, err := w.Accounts.CreateSession(ctx(c), u)
	if err != nil {
		return err
	}
	w.setSession(c, secret)
	return c.Redirect(http.StatusSeeOther, "/dashboard")
}

func (w *ui) logout(c echo.Context) error {
	if ck, err := c.Cookie(sessionCookie); err == nil && ck.Value != "" {
		if err := w.Accounts.DeleteSession(ctx(c), ck.Value); err != nil {
			return err
		}
	}
	w.setSession(c, "")
	return done(c, "/login", "logged-out")
}
