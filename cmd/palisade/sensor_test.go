package main

import (
	"io"
	"strings"
	"testing"
)

// TestSensorFlags: the flags reach sensorFlags, with their defaults.
// The pipeline they configure is tested in sensor/agent.
func TestSensorFlags(t *testing.T) {
	t.Setenv("NODE_NAME", "node-a")
	cmd := sensorCmd()
	if err := cmd.ParseFlags([]string{"--bundle-url=https://c/b.tar.gz", "--cluster-id=c1", "--alerts-file=/tmp/a", "--observations-file=/tmp/o"}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"node-name": "node-a", "bundle-url": "https://c/b.tar.gz", "cluster-id": "c1",
		"alerts-file": "/tmp/a", "observations-file": "/tmp/o", "listen": ":8080", "log-level": "info",
	} {
		if got := cmd.Flags().Lookup(name).Value.String(); got != want {
			t.Errorf("--%s = %q, want %q", name, got, want)
		}
	}
}

func TestSensorRefusesWithoutNodeName(t *testing.T) {
	err := runSensor(t.Context(), io.Discard, sensorFlags{logLevel: "info"})
	if err == nil || !strings.Contains(err.Error(), "--node-name") {
		t.Fatalf("err = %v, want it to ask for --node-name", err)
	}
}
