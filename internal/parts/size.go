package parts

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Media sizes by name: what one file may hold on each.
var mediaSizes = map[string]int64{
	"fat32":  4<<30 - 1,      // the largest file FAT32 stores
	"dvd":    4_700_000_000,  // a single-layer DVD, 4.7 GB
	"dvd-dl": 8_500_000_000,  // a dual-layer DVD, 8.5 GB
	"bd25":   25_000_000_000, // a single-layer Blu-ray, 25 GB
	"bd50":   50_000_000_000,
}

var units = []struct {
	suffix string
	mult   float64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
	{"b", 1}, {"", 1},
}

// ParseSize reads a part size: bytes with a unit (700MiB, 4.7GB, 2G, where
// a bare K, M, G is binary like split(1)), or a medium's name: fat32 (4 GiB
// − 1), dvd (4.7 GB), dvd-dl, bd25, bd50.
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), " ", ""))
	if n, ok := mediaSizes[t]; ok {
		return n, nil
	}
	for _, u := range units {
		num, ok := strings.CutSuffix(t, u.suffix)
		if !ok || num == "" {
			continue
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil {
			continue
		}
		v := math.Floor(f * u.mult)
		if v < 1 || v > math.MaxInt64/2 {
			return 0, fmt.Errorf("size %q is out of range", s)
		}
		return int64(v), nil
	}
	return 0, fmt.Errorf("size %q: want bytes with a unit (700MiB, 4.7GB) or fat32, dvd, dvd-dl, bd25, bd50", s)
}
