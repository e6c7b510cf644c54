package paging

import (
	"reflect"
	"strconv"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		limit, cursor string
		want          Page
		bad           bool
	}{
		{"", "", Page{}, false},
		{"50", "", Page{Limit: 50}, false},
		{"1000", Cursor("12"), Page{Limit: 1000, After: "12"}, false},
		{"0", "", Page{}, true},
		{"1001", "", Page{}, true},
		{"-1", "", Page{}, true},
		{"ten", "", Page{}, true},
		{"", "not base64!", Page{}, true},
	} {
		got, err := Parse(tc.limit, tc.cursor)
		if (err != nil) != tc.bad || !tc.bad && got != tc.want {
			t.Errorf("Parse(%q, %q) = %+v, %v", tc.limit, tc.cursor, got, err)
		}
	}
}

func TestCut(t *testing.T) {
	key := func(n int) string { return strconv.Itoa(n) }
	items := []int{1, 2, 3}
	if got, next := Cut(Page{Limit: 2}, items, key); !reflect.DeepEqual(got, []int{1, 2}) || next != Cursor("2") {
		t.Errorf("a page of 2 of 3 = %v %q", got, next)
	}
	if got, next := Cut(Page{Limit: 3}, items, key); len(got) != 3 || next != "" {
		t.Errorf("the last page = %v %q", got, next)
	}
	if got, next := Cut(Page{}, items, key); len(got) != 3 || next != "" {
		t.Errorf("no limit = %v %q", got, next)
	}
}
