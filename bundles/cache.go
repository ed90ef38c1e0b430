package bundles

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/palisade-dev/palisade/internal/atomicfile"
)

// Files of a client's cache directory. The archive is a plain bundle that
// `opa run` loads; the metadata names where it came from and its digest,
// so a half-written pair is detected and ignored.
const (
	cacheBundle = "bundle.tar.gz"
	cacheMeta   = "bundle.json"
	// maxMetaBytes bounds the metadata file.
	maxMetaBytes = 64 << 10
)

// errCacheEmpty: the cache holds no bundle yet.
var errCacheEmpty = errors.New("bundle cache is empty")

type cacheMetadata struct {
	URL      string    `json:"url"`
	ETag     string    `json:"etag"`
	SHA256   string    `json:"sha256"`
	Revision string    `json:"revision"`
	Saved    time.Time `json:"saved"`
}

// loadCache activates the cached bundle, verified and compiled like one
// from the server. A missing cache is normal; an unusable one is logged,
// counted and ignored.
func (c *Client) loadCache(ctx context.Context) {
	raw, meta, err := c.readCache()
	if errors.Is(err, errCacheEmpty) {
		c.log.Info("bundle cache empty", keyDir, c.opts.CacheDir)
		return
	}
	if err == nil {
		err = c.activate(ctx, raw, meta.ETag, "cache")
	}
	if err != nil {
		c.metrics.errors.WithLabelValues(reasonCache).Inc()
		c.log.Error("bundle cache ignored", keyDir, c.opts.CacheDir, keyError, err.Error())
	}
}

func (c *Client) readCache() ([]byte, *cacheMetadata, error) {
	metaRaw, err := readBounded(filepath.Join(c.opts.CacheDir, cacheMeta), maxMetaBytes)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, errCacheEmpty
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read bundle cache: %w", err)
	}
	var meta cacheMetadata
	if err := json.Unmarshal(metaRaw, &meta); err != nil {
		return nil, nil, fmt.Errorf("read bundle cache: %s: %w", cacheMeta, err)
	}
	if meta.URL != c.url {
		return nil, nil, fmt.Errorf("read bundle cache: it holds %s, not %s", meta.URL, c.url)
	}
	raw, err := readBounded(filepath.Join(c.opts.CacheDir, cacheBundle), c.opts.MaxBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("read bundle cache: %w", err)
	}
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != meta.SHA256 {
		return nil, nil, fmt.Errorf("read bundle cache: %s does not match its digest", cacheBundle)
	}
	return raw, &meta, nil
}

// persist writes the active archive to the cache. A failure is logged and
// counted: the bundle stays active, only a restart without the server
// would miss it.
func (c *Client) persist(raw []byte) {
	if c.opts.CacheDir == "" {
		return
	}
	if err := c.writeCache(raw); err != nil {
		c.metrics.errors.WithLabelValues(reasonCache).Inc()
		c.log.Error("bundle cache not written", keyDir, c.opts.CacheDir, keyError, err.Error())
	}
}

func (c *Client) writeCache(raw []byte) error {
	if err := os.MkdirAll(c.opts.CacheDir, 0o700); err != nil {
		return fmt.Errorf("write bundle cache: %w", err)
	}
	sum := sha256.Sum256(raw)
	meta, err := json.Marshal(cacheMetadata{
		URL: c.url, ETag: c.etag, SHA256: hex.EncodeToString(sum[:]), Revision: c.Revision(), Saved: time.Now().UTC(),
	})
	if err != nil {
		return fmt.Errorf("write bundle cache: %w", err)
	}
	// Archive first: a crash between the two renames leaves a digest that
	// does not match, and the pair is ignored.
	if err := writeAtomic(c.opts.CacheDir, cacheBundle, raw); err != nil {
		return err
	}
	return writeAtomic(c.opts.CacheDir, cacheMeta, meta)
}

// writeAtomic is atomicfile.Write with the directory sync best effort:
// the cache needs the pair consistent, not durable (a lost rename only
// makes a restart fetch again), and not every file system syncs
// directories.
func writeAtomic(dir, name string, data []byte) error {
	if err := atomicfile.Write(dir, name, data); err != nil && !errors.Is(err, atomicfile.ErrDirSync) {
		return err
	}
	return nil
}

func readBounded(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(raw)) > limit {
		return nil, fmt.Errorf("read %s: %w: more than %d bytes", name, ErrTooLarge, limit)
	}
	return raw, nil
}
