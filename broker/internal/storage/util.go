package storage

import "github.com/weir-dev/weir/broker/internal/vfs"

func isNotExist(err error) bool { return vfs.IsNotExist(err) }
