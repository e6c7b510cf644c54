// Package paging cuts long lists into pages by keyset: a page is a limit and
// an opaque cursor naming the sort key of the last item already served, so
// a page costs the same however far into the list it is and an item created
// or deleted meanwhile neither repeats nor hides another.
package paging

import (
	"encoding/base64"
	"fmt"
	"strconv"

	"gorm.io/gorm"

	"homeport.dev/cloud/internal/problem"
)

// MaxLimit is the largest page a client may ask for.
const MaxLimit = 1000

// Page selects one page of a list ordered by a unique key.
type Page struct {
	// Limit is the most items served; 0 serves the whole rest of the list
	// (a request without limit, as before lists were paged).
	Limit int
	// After is the key of the last item of the previous page, "" for the
	// first page.
	After string
}

// Parse reads a page from the query parameters limit and cursor,
// rejecting anything else than 1..MaxLimit and a cursor this package made.
func Parse(limit, cursor string) (Page, error) {
	var p Page
	if limit != "" {
		n, err := strconv.Atoi(limit)
		if err != nil || n < 1 || n > MaxLimit {
			return Page{}, problem.InvalidField("limit", fmt.Errorf("limit must be a number from 1 to %d, got %q", MaxLimit, limit))
		}
		p.Limit = n
	}
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || len(b) == 0 || len(b) > 256 {
			return Page{}, problem.InvalidField("cursor", fmt.Errorf("cursor is not one this API gave (use the X-Next-Cursor header of the previous page)"))
		}
		p.After = string(b)
	}
	return p, nil
}

// Cursor encodes the key of the last item served.
func Cursor(key string) string { return base64.RawURLEncoding.EncodeToString([]byte(key)) }

// Query orders q by column (unique) and restricts it to the page, fetching
// one item more than the limit so Cut can tell whether another page follows.
// numeric says the column holds integers.
func (p Page) Query(q *gorm.DB, column string, numeric bool) (*gorm.DB, error) {
	q = q.Order(column)
	if p.After != "" {
		var after any = p.After
		if numeric {
			n, err := strconv.ParseUint(p.After, 10, 64)
			if err != nil {
				return nil, problem.InvalidField("cursor", fmt.Errorf("cursor is not one this list gave"))
			}
			after = n
		}
		q = q.Where(column+" > ?", after)
	}
	if p.Limit > 0 {
		q = q.Limit(p.Limit + 1)
	}
	return q, nil
}

// Cut drops the item Query fetched beyond the limit and returns the cursor
// of the next page: "" when items is the last page.
func Cut[T any](p Page, items []T, key func(T) string) ([]T, string) {
	if p.Limit == 0 || len(items) <= p.Limit {
		return items, ""
	}
	items = items[:p.Limit]
	return items, Cursor(key(items[len(items)-1]))
}

// Find runs q for page p of the list ordered by column (see Query) and
// returns the page and the cursor of the next one (see Cut).
func Find[T any](q *gorm.DB, p Page, column string, numeric bool, key func(T) string) ([]T, string, error) {
	q, err := p.Query(q, column, numeric)
	if err != nil {
		return nil, "", err
	}
	var items []T
	if err := q.Find(&items).Error; err != nil {
		return nil, "", err
	}
	items, next := Cut(p, items, key)
	return items, next, nil
}
