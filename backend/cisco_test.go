package backend

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestReplyBodiesAreCapped: a reply larger than 1 MiB is refused, not read
// whole, and a huge 2xx counts as ambiguous.
func TestReplyBodiesAreCapped(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/token") {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"access_token":"t","token_type":"bearer","expires_in":3600}`)
			return
		}
		w.WriteHeader(http.StatusOK)
		chunk := strings.Repeat("x", 64<<10)
		for i := 0; i < 64; i++ { // 4 MiB
			if _, err := fmt.Fprint(w, chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	c := newCiscoClient(ciscoSettings{ClientID: "id", ClientSecret: "secret", APIURL: srv.URL, TokenURL: srv.URL + "/token"}, nil, 0, nil)
	_, err := c.rotateKey(context.Background())
	if err == nil || !strings.Contains(err.Error(), "larger than 1 MiB") || !isAmbiguous(err) {
		t.Fatalf("err = %v", err)
	}
}
