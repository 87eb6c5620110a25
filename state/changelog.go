package state

import "strconv"

// ChangelogTopicName returns the changelog topic of a store:
// <application>-<store>-changelog.
func ChangelogTopicName(application, store string) string {
	return application + "-" + store + "-changelog"
}

// ChangelogTopicFor returns the changelog topic spec's store needs in the
// given application: key-value stores use cleanup.policy=compact; window and
// session stores compact,delete with retention.ms = the store's retention +
// ChangelogRetentionExtra. spec.ChangelogConfigs override these.
func ChangelogTopicFor(application string, spec Spec) ChangelogTopic {
	t := ChangelogTopic{
		Name:    ChangelogTopicName(application, spec.Name),
		Configs: map[string]string{},
	}
	switch spec.Kind {
	case KindWindow, KindSession:
		ret := spec.Retention
		if ret <= 0 {
			ret = DefaultRetention
		}
		t.Configs["cleanup.policy"] = "compact,delete"
		t.Configs["retention.ms"] = strconv.FormatInt((ret + ChangelogRetentionExtra).Milliseconds(), 10)
	default:
		t.Configs["cleanup.policy"] = "compact"
	}
	for k, v := range spec.ChangelogConfigs {
		t.Configs[k] = v
	}
	return t
}
