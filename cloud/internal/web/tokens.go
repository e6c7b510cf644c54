package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"homeport.dev/proto"
)

// tokenView is a token whose secret the user sees this once.
type tokenView struct {
	Token   proto.Token
	Rotated bool
}

// createToken shows the new secret on its own page, never after a
// redirect: nothing that could be reloaded or bookmarked holds it.
func (w *ui) createToken(c echo.Context) error {
	t, err := w.Accounts.CreateToken(ctx(c), currentUser(c), c.FormValue("name"))
	if err != nil {
		return w.failed(c, "token", err)
	}
	return w.render(c, http.StatusCreated, "token", page{Title: "New API token", Data: tokenView{Token: t}})
}

// setupView is the one-command first run for a machine at home, with a
// token made for it.
type setupView struct {
	Token    proto.Token
	CloudURL string
}

// UpCommand starts a home in one command: register, expose, run.
func (v setupView) UpCommand() string {
	return "home up --cloud " + v.CloudURL + " --token " + v.Token.Token + " --to localhost:3000"
}

// RegisterCommand only claims the home and writes its profile.
func (v setupView) RegisterCommand() string {
	return "home register --cloud " + v.CloudURL + " --token " + v.Token.Token
}

// setupCommand creates a token for one machine and shows the commands that
// use it, once, like any new secret. The token claims the home; the home
// profile never stores it (the home signs its requests with its own key).
func (w *ui) setupCommand(c echo.Context) error {
	t, err := w.Accounts.CreateToken(ctx(c), currentUser(c), "home setup "+time.Now().UTC().Format("2006-01-02 15:04"))
	if err != nil {
		return w.failed(c, "setup", err)
	}
	return w.render(c, http.StatusCreated, "setup", page{Title: "Set up a home", Data: setupView{Token: t, CloudURL: w.cloudURL(c)}})
}

func (w *ui) rotateToken(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	t, err := w.Accounts.RotateToken(ctx(c), currentUser(c), id)
	if err != nil {
		return w.failed(c, "token", err)
	}
	return w.render(c, http.StatusOK, "token", page{Title: "Rotated API token", Data: tokenView{Token: t, Rotated: true}})
}

func (w *ui) deleteToken(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	if err := w.Accounts.DeleteToken(ctx(c), currentUser(c), id); err != nil {
		return w.failed(c, "token", err)
	}
	return done(c, "/dashboard", "token-deleted")
}
