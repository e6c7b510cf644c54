package web

import (
	"net/http"

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
