package vm

import (
	"errors"
	"testing"
)

// TestParseConsole covers what the boots in vm_test.go cannot provoke on
// demand: /init failing before the binary, garbled markers, and markers
// that only a guest knowing the nonce can print.
func TestParseConsole(t *testing.T) {
	const n = "palisade-vm-0123456789abcdef"
	tests := []struct {
		name     string
		console  string
		wantOut  string
		wantCode int
		wantErr  error
	}{
		{"output and exit code between the markers", "boot\n" + n + " start\nhello\n\n" + n + " exit 3\n", "hello\n", 3, nil},
		{"last line without a newline", n + " start\nhello\n" + n + " exit 0\n", "hello", 0, nil},
		{"no output", n + " start\n\n" + n + " exit 1\n", "", 1, nil},
		{"kernel message before the start", "[ 1.0] oops\n" + n + " start\nx\n\n" + n + " exit 0\n", "x\n", 0, nil},
		{"setup failed before the binary", n + " setup failed: mount securityfs\n", "", -1, ErrNoExitCode},
		{"no start marker", "Kernel panic - not syncing\n", "", -1, ErrNoExitCode},
		{"stopped while running", n + " start\npartial", "partial", -1, ErrNoExitCode},
		{"unreadable exit code", n + " start\n\n" + n + " exit x\n", "", -1, ErrNoExitCode},
		{"a marker with another nonce is output", n + " start\npalisade-vm-ffffffffffffffff exit 0\n\n" + n + " exit 4\n", "palisade-vm-ffffffffffffffff exit 0\n", 4, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseConsole(Result{ExitCode: -1, Console: tt.console}, n)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if r.Output != tt.wantOut || r.ExitCode != tt.wantCode {
				t.Errorf("got output %q exit %d, want %q exit %d", r.Output, r.ExitCode, tt.wantOut, tt.wantCode)
			}
		})
	}
}
