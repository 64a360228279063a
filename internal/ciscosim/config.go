package ciscosim

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// LoadConfig reads a JSON config file; "token_ttl" and "propagation_delay"
// are Go durations such as "90s".
func LoadConfig(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	var file struct {
		Config
		TokenTTL         string `json:"token_ttl"`
		PropagationDelay string `json:"propagation_delay"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	cfg := file.Config
	if file.TokenTTL != "" {
		if cfg.TokenTTL, err = time.ParseDuration(file.TokenTTL); err != nil {
			return Config{}, fmt.Errorf("%s: token_ttl: %w", path, err)
		}
	}
	if file.PropagationDelay != "" {
		if cfg.PropagationDelay, err = time.ParseDuration(file.PropagationDelay); err != nil {
			return Config{}, fmt.Errorf("%s: propagation_delay: %w", path, err)
		}
	}
	return cfg, nil
}
