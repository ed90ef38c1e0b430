package bundles

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/open-policy-agent/opa/v1/bundle"
)

// DefaultMaxBytes bounds a bundle, compressed and uncompressed: a
// thousand-rule policy is well under a megabyte, and OPA's own limit (1 GiB)
// is far more than a webhook should hold in memory.
const DefaultMaxBytes = 64 << 20

// Read reads a bundle archive. The archive and everything it decompresses
// to are bounded by maxBytes (DefaultMaxBytes if not positive), and each
// file by OPA's reader size limit, its guard against gzip bombs. With a
// key, the signature is verified before any file is parsed; without one,
// signatures are ignored. Read returns ErrTooLarge, ErrUnsigned or
// ErrSignature (wrapped) for those causes, and other errors for archives
// that are not bundles.
func Read(raw []byte, key *VerificationKey, maxBytes int64) (*bundle.Bundle, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if int64(len(raw)) > maxBytes {
		return nil, fmt.Errorf("read bundle: %w: %d bytes compressed, limit %d", ErrTooLarge, len(raw), maxBytes)
	}
	files, err := unpack(raw, maxBytes)
	if err != nil {
		return nil, fmt.Errorf("read bundle: %w", err)
	}
	var vc *bundle.VerificationConfig
	if key != nil {
		if err := key.validate(); err != nil {
			return nil, fmt.Errorf("read bundle: verification key: %w", err)
		}
		vc = key.config()
		if err := verifyFiles(files, vc); err != nil {
			return nil, fmt.Errorf("read bundle: %w", err)
		}
	}
	loader := bundle.NewTarballLoaderWithBaseURL(bytes.NewReader(raw), "").WithSizeLimitBytes(maxBytes)
	reader := bundle.NewCustomReader(loader).WithSizeLimitBytes(maxBytes)
	if vc != nil {
		// Verified above; OPA's reader checks it again as it reads.
		reader = reader.WithBundleVerificationConfig(vc)
	} else {
		reader = reader.WithSkipBundleVerification(true)
	}
	b, err := reader.Read()
	if err != nil {
		return nil, fmt.Errorf("read bundle: %w", err)
	}
	return &b, nil
}

// unpack returns the regular files of a gzipped tarball by clean path
// relative to the root, refusing more than maxBytes in all and duplicate
// names (which a verifier and a reader could resolve differently).
func unpack(raw []byte, maxBytes int64) (map[string][]byte, error) {
	gz, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	files := map[string][]byte{}
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("untar: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		total += h.Size
		if h.Size < 0 || total > maxBytes {
			return nil, fmt.Errorf("%w: more than %d bytes uncompressed", ErrTooLarge, maxBytes)
		}
		name := path.Clean("/" + h.Name)[1:]
		if _, dup := files[name]; dup {
			return nil, fmt.Errorf("untar: duplicate file %s", name)
		}
		data := make([]byte, h.Size)
		if _, err := io.ReadFull(tr, data); err != nil {
			return nil, fmt.Errorf("untar %s: %w", name, err)
		}
		files[name] = data
	}
}
