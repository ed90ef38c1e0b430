package main

import "testing"

func TestCheckComparesDecisions(t *testing.T) {
	denied := expectation{allowed: false}
	warned := expectation{allowed: true, warnings: 2}
	for _, tc := range []struct {
		body string
		want expectation
		ok   bool
	}{
		{`{"response":{"uid":"u","allowed":false}}`, denied, true},
		{`{"response":{"uid":"u","allowed":true}}`, denied, false}, // the no-op floor's answer
		{`{"response":{"allowed":true,"warnings":["a","b"]}}`, warned, true},
		{`{"response":{"allowed":true,"warnings":["a"]}}`, warned, false},
		{`{"result":{"allowed":true,"warnings":["a","b"],"violations":[]}}`, warned, true},
		{`{"result":{"allowed":false}}`, warned, false},
		{`{}`, denied, false},
		{`not json`, denied, false},
	} {
		if err := check([]byte(tc.body), tc.want); (err == nil) != tc.ok {
			t.Errorf("check(%s, %+v) = %v, want ok=%v", tc.body, tc.want, err, tc.ok)
		}
	}
}
