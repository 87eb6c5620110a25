package topics

// Dir returns the data directory the registry keeps its topics under (the
// broker's log directory, as DescribeLogDirs names it).
func (r *Registry) Dir() string { return r.opts.Dir }
