package broker

import (
	"github.com/weir-dev/weir/broker/internal/topics"
)

// storageOpener returns how the broker opens partition logs.
func storageOpener(opts Options) topics.OpenLogFunc {
	return topics.OpenMemLog
}
