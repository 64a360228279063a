package credprocess

import (
	"encoding/json"
	"math/rand"
	"strings"
	"testing"
	"time"
)

const (
	keyID  = "AKIAEXAMPLE0000000001"
	secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY"
)

func rendered(id, sec string) []byte {
	b, _ := json.Marshal(Rendered{Version: 1, AccessKeyID: id, SecretAccessKey: sec})
	return b
}

// The promise: whenever the process runs, the expiry it prints is at least
// Lifetime ahead (no SDK is handed expired credentials, botocore refuses
// them) and less than a second more (the shipper re-runs it soon), on a
// whole second.
func TestExpiry_AtLeastLifetimeAheadOnAWholeSecond(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	base := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	for i := 0; i < 100000; i++ {
		now := base.Add(time.Duration(rng.Int63n(int64(48 * time.Hour))))
		if i%10 == 0 {
			now = now.Truncate(time.Second) // exact seconds too
		}
		exp := Expiry(now)
		ahead := exp.Sub(now)
		if ahead < Lifetime || ahead >= Lifetime+time.Second {
			t.Fatalf("at %s the expiry %s is %s ahead; want [%s, %s)", now.Format(time.RFC3339Nano), exp.Format(time.RFC3339Nano), ahead, Lifetime, Lifetime+time.Second)
		}
		if exp.Nanosecond() != 0 {
			t.Fatalf("expiry %s is not on a whole second", exp.Format(time.RFC3339Nano))
		}
	}
}

func TestPrint_StampsTheExpiryAtTheTimeItRuns(t *testing.T) {
	now := time.Date(2026, 12, 7, 5, 0, 0, 400_000_000, time.FixedZone("CET", 3600))
	out, err := Print(rendered(keyID, secret), now)
	if err != nil {
		t.Fatal(err)
	}
	var got Output
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	want := Output{Version: 1, AccessKeyID: keyID, SecretAccessKey: secret, Expiration: "2026-12-07T04:00:03Z"}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// The same file later gives a later expiry: the file's age does not matter.
	later, _ := Print(rendered(keyID, secret), now.Add(time.Hour))
	if !strings.Contains(string(later), `"Expiration":"2026-12-07T05:00:03Z"`) {
		t.Fatalf("an hour later: %s", later)
	}
}

func TestPrint_RefusesWhatIsNotARenderedKeyPair(t *testing.T) {
	now := time.Now()
	for name, file := range map[string]string{
		"empty file":      "",
		"only spaces":     "  \n",
		"not JSON":        "[default]\naws_access_key_id = " + keyID + "\naws_secret_access_key = " + secret + "\n",
		"no secret":       `{"Version":1,"AccessKeyId":"` + keyID + `","SecretAccessKey":""}`,
		"no key id":       `{"Version":1,"AccessKeyId":"","SecretAccessKey":"` + secret + `"}`,
		"no version":      `{"AccessKeyId":"` + keyID + `","SecretAccessKey":"` + secret + `"}`,
		"version 2":       `{"Version":2,"AccessKeyId":"` + keyID + `","SecretAccessKey":"` + secret + `"}`,
		"whole creds":     `{"access_key_id":"` + keyID + `","secret_access_key":"` + secret + `"}`,
		"secret a number": `{"Version":1,"AccessKeyId":"` + keyID + `","SecretAccessKey":12}`,
		"truncated":       `{"Version":1,"AccessKeyId":"` + keyID + `","SecretAccessKey":"` + secret,
	} {
		out, err := Print([]byte(file), now)
		if err == nil {
			t.Errorf("%s: printed %s", name, out)
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "wJalr") {
			t.Errorf("%s: the error quotes the secret: %v", name, err)
		}
	}
}

// Whatever the file holds, an error never quotes it.
func FuzzPrint_ErrorsNeverQuoteTheFile(f *testing.F) {
	f.Add(string(rendered(keyID, secret)))
	f.Add(`{"Version":1,"AccessKeyId":"x","SecretAccessKey":"` + secret + `","Extra":"` + secret + `"}`)
	f.Add(`{"Version":"` + secret + `"}`)
	f.Add(`{"` + secret + `":1}`)
	f.Fuzz(func(t *testing.T, file string) {
		_, err := Print([]byte(file), time.Unix(0, 0))
		if err == nil {
			return
		}
		msg := err.Error()
		// Any 8-byte run of the file that is in the message and is not a
		// field name or the message's own words would be a leak; the
		// secret-shaped seed is the one that matters.
		if strings.Contains(file, secret) && strings.Contains(msg, secret) {
			t.Fatalf("the error quotes the secret: %v", err)
		}
	})
}
