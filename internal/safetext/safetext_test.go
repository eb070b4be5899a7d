package safetext

import "testing"

func TestStringEscapesWhatATerminalWouldObey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"reg.example/app:1.0", "reg.example/app:1.0"},
		{"naïve/アプリ:1", "naïve/アプリ:1"},
		{"evil\x1b[2J\x1b[31mred", `evil\x1b[2J\x1b[31mred`},
		{"line\rover", `line\x0dover`},
		{"new\nline", `new\x0aline`},
		{"bell\x07", `bell\x07`},
		{"c1\u009bx", `c1\x9bx`},
		{"bidi\u202eevil", `bidi\u202eevil`},
		{"bad\xffutf8", `bad\xffutf8`},
		{`back\slash`, `back\\slash`},
	}
	for _, tt := range tests {
		if got := String(tt.in); got != tt.want {
			t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
