package parts

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// rebuild recomputes the parts whose dst is set from the others. src and
// dst are indexed as s.Parts (data parts, then parity); a nil src is a part
// that cannot be read. Work goes a chunk at a time across every part, so
// memory stays at a chunk per part.
func rebuild(ctx context.Context, l *Layout, parts []PartStatus, src []io.ReaderAt, dst []io.WriterAt) error {
	enc, err := newCode(l.Shards, l.Parity)
	if err != nil {
		return err
	}
	total := l.Shards + l.Parity
	// shard maps a code shard to a part; -1 is a data shard never written,
	// all zeros.
	shard := make([]int, total)
	for k := range total {
		switch {
		case k < l.Data:
			shard[k] = k
		case k < l.Shards:
			shard[k] = -1
		default:
			shard[k] = l.Data + k - l.Shards
		}
	}
	wantParity := false
	for i := l.Data; i < len(dst); i++ {
		wantParity = wantParity || dst[i] != nil
	}
	shardLen := l.ShardSize()
	// Small parts need no more than their size.
	chunk := int(min(int64(chunkFor(len(parts))), (shardLen+63)&^63))
	chunk = max(chunk, 64)
	zero := make([]byte, chunk)
	bufs := make([][]byte, len(parts))
	for i := range bufs {
		bufs[i] = make([]byte, chunk)
	}
	shards := make([][]byte, total)
	for off := int64(0); off < shardLen; off += int64(chunk) {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int(min(int64(chunk), shardLen-off))
		for k, i := range shard {
			switch {
			case i < 0:
				shards[k] = zero[:n]
			case src[i] == nil:
				shards[k] = bufs[i][:0]
			default:
				buf := bufs[i][:n]
				have := int(max(0, min(int64(n), parts[i].Size-off)))
				if _, err := src[i].ReadAt(buf[:have], off); err != nil && !(errors.Is(err, io.EOF) && have == 0) {
					return fmt.Errorf("reading part %s at %d: %w", parts[i].Name, off, err)
				}
				clear(buf[have:])
				shards[k] = buf
			}
		}
		if wantParity {
			err = enc.Reconstruct(shards)
		} else {
			err = enc.ReconstructData(shards)
		}
		if err != nil {
			return fmt.Errorf("rebuilding from parity at %d: %w", off, err)
		}
		for k, i := range shard {
			if i < 0 || dst[i] == nil {
				continue
			}
			have := int(max(0, min(int64(n), parts[i].Size-off)))
			if have == 0 {
				continue
			}
			if _, err := dst[i].WriteAt(shards[k][:have], off); err != nil {
				return fmt.Errorf("writing rebuilt part %s: %w", parts[i].Name, err)
			}
		}
	}
	return nil
}
