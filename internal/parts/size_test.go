package parts

import "testing"

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"fat32", 4294967295, true},
		{"FAT32", 4294967295, true},
		{"dvd", 4_700_000_000, true},
		{"bd25", 25_000_000_000, true},
		{"4.7GB", 4_700_000_000, true},
		{"700MiB", 700 << 20, true},
		{"2G", 2 << 30, true},
		{"1000", 1000, true},
		{"64 KiB", 64 << 10, true},
		{"0", 0, false},
		{"-5M", 0, false},
		{"floppy", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
