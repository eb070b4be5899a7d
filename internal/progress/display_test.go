package progress

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestLinesPrintsTotalsOnClose(t *testing.T) {
	tests := []struct {
		name string
		run  func(Tracker)
		want string
	}{
		{
			name: "streamed and skipped blobs both count in full",
			run: func(tr Tracker) {
				tr.Start("a", "sha256:aa", 3<<20)
				tr.Add("a", 1<<20)
				tr.Add("a", 2<<20)
				tr.Done("a", false, nil)
				tr.Start("b", "sha256:bb", 1<<20)
				tr.Done("b", true, nil)
			},
			want: "2/2 blobs, 4.0 MiB/4.0 MiB\n",
		},
		{
			name: "failed and unfinished transfers show",
			run: func(tr Tracker) {
				tr.Start("a", "sha256:aa", 1000)
				tr.Add("a", 10)
				tr.Done("a", false, errors.New("reset"))
				tr.Start("b", "sha256:bb", 24)
				tr.Add("unknown", 5)
				tr.Done("unknown", false, nil)
			},
			want: "1/2 blobs, 10 B/1.0 KiB, 1 failed\n",
		},
		{
			name: "nothing transferred prints nothing",
			run:  func(Tracker) {},
			want: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := NewLines(&buf, 0)
			tt.run(l)
			l.Close()
			l.Close() // a second Close must not print again
			if got := buf.String(); got != tt.want {
				t.Errorf("output %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBarsDrawTotalsAndSurviveConcurrentWorkers(t *testing.T) {
	var buf bytes.Buffer
	b := NewBars(&buf)
	done := make(chan struct{})
	for i := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			id := string(rune('a' + i))
			b.Start(id, "sha256:"+id, 100)
			b.Add(id, 60)
			b.Add(id, 40)
			b.Done(id, false, nil)
		}()
	}
	for range 4 {
		<-done
	}
	b.Start("open", "never finished", 50)
	b.Close()
	b.Start("late", "after close", 1) // must not panic or block
	out := buf.String()
	for _, want := range []string{"blobs", "4 / 5", "bytes"} {
		if !strings.Contains(out, want) {
			t.Errorf("bars output lacks %q:\n%s", want, out)
		}
	}
}

func TestNewPicksDisplayForWriter(t *testing.T) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	tests := []struct {
		name  string
		quiet bool
		w     *os.File
		want  string
	}{
		{"quiet shows nothing", true, os.Stderr, "progress.nopDisplay"},
		{"a file that is no terminal gets lines", false, devnull, "*progress.Lines"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := New(tt.w, tt.quiet, 0)
			defer d.Close()
			if got := typeName(d); got != tt.want {
				t.Errorf("New chose %s, want %s", got, tt.want)
			}
		})
	}
}

func TestBytesIsHuman(t *testing.T) {
	tests := map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 300 << 20: "300.0 MiB", 1288490189: "1.2 GiB"}
	for n, want := range tests {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func typeName(v any) string {
	switch v.(type) {
	case nopDisplay:
		return "progress.nopDisplay"
	case *Lines:
		return "*progress.Lines"
	case *Bars:
		return "*progress.Bars"
	}
	return "unknown"
}

func TestDisplaysPrintNoticesWithTheirOutput(t *testing.T) {
	tests := []struct {
		name string
		new  func(w *bytes.Buffer) Display
	}{
		{"lines", func(w *bytes.Buffer) Display { return NewLines(w, 0) }},
		{"bars", func(w *bytes.Buffer) Display { return NewBars(w) }},
		{"quiet", func(w *bytes.Buffer) Display { return New(w, true, 0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			d := tt.new(&buf)
			d.Start("a", "sha256:aa", 10)
			if _, err := d.Write([]byte("note: during\n")); err != nil {
				t.Fatal(err)
			}
			d.Done("a", false, nil)
			d.Close()
			if _, err := d.Write([]byte("note: after\n")); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"note: during\n", "note: after\n"} {
				if !strings.Contains(buf.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, buf.String())
				}
			}
		})
	}
}
