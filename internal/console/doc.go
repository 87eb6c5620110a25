// Package console is the server behind `weir console`: a JSON API over a
// Kafka-compatible cluster (kadm and kgo requests: brokers, the metadata
// quorum, topics, messages, consumer groups) and over the metrics
// endpoints of running stream applications (their /application
// description), plus the web UI that draws it, embedded in the binary
// (plain HTML, CSS and JavaScript in assets/, nothing fetched at run time).
//
// The UI polls the API every two seconds for the page it shows, so that
// it updates without a reload. Every API call is bounded by
// Options.RequestTimeout: a broker or an application that does not answer
// makes that call fail with a JSON error the page shows, and the next poll
// tries again.
//
// Routes (all GET unless said):
//
//	/api/cluster                     brokers, controller, quorum, partition health, disk use
//	/api/topics                      every topic with its partition and record counts
//	/api/topics/{topic}              partitions (leader, replicas, ISR, offsets, size), configs
//	/api/topics/{topic}/messages     a bounded page of records (see MessagesQuery)
//	/api/groups                      consumer groups with state and total lag
//	/api/groups/{group}              members, assignments, lag per partition (kadm's Lag)
//	POST /api/groups/{group}/reset   offset reset plan; committed only with "execute": true
//	/api/apps                        each --apps URL's /application answer, or why it is down
package console
