package console

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/weir-dev/weir/internal/cli"
)

// App is one --apps URL's state in /api/apps: Application is what its
// /application endpoint answered (the runtime's description of the
// instance, passed through as is), or Error says why it is down. Group is
// the application's consumer group as the cluster sees it: every instance
// of the application, those not given to --apps included.
type App struct {
	URL         string          `json:"url"`
	Up          bool            `json:"up"`
	Error       string          `json:"error,omitempty"`
	Application json.RawMessage `json:"application,omitempty"`
	Group       *AppGroup       `json:"group,omitempty"`
}

// AppGroup is an application's consumer group (its application id).
type AppGroup struct {
	Group   string        `json:"group"`
	State   string        `json:"state"`
	Members []GroupMember `json:"members"`
	Error   string        `json:"error,omitempty"`
}

// maxAppAnswer bounds an application's /application answer.
const maxAppAnswer = 16 << 20

func (s *Server) apps(ctx context.Context, _ *http.Request) (any, error) {
	out := make([]App, len(s.opts.Apps))
	var wg sync.WaitGroup
	for i, u := range s.opts.Apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = s.app(ctx, u)
		}()
	}
	wg.Wait()
	groups := map[string]*AppGroup{}
	for i := range out {
		var id struct {
			Application string `json:"application"`
		}
		if !out[i].Up || json.Unmarshal(out[i].Application, &id) != nil || id.Application == "" {
			continue
		}
		if groups[id.Application] == nil {
			groups[id.Application] = s.appGroup(ctx, id.Application)
		}
		out[i].Group = groups[id.Application]
	}
	return out, nil
}

// appGroup describes an application's consumer group; a failure is
// reported in it, not as the call's.
func (s *Server) appGroup(ctx context.Context, group string) *AppGroup {
	g := &AppGroup{Group: group, Members: []GroupMember{}}
	described, err := s.adm.DescribeGroups(ctx, group)
	if err != nil {
		g.Error = err.Error()
		return g
	}
	d, ok := described[group]
	switch {
	case !ok:
		g.Error = "no answer"
	case d.Err != nil:
		g.Error = cli.KafkaError(d.Err, d.ErrMessage).Error()
	default:
		g.State = d.State
		for _, m := range d.Members {
			g.Members = append(g.Members, groupMember(m))
		}
	}
	return g
}

// app asks one instance for its description.
func (s *Server) app(ctx context.Context, base string) App {
	a := App{URL: base}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/application", nil)
	if err != nil {
		a.Error = err.Error()
		return a
	}
	resp, err := s.http.Do(req)
	if err != nil {
		a.Error = "down: " + err.Error()
		return a
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAppAnswer+1))
	switch {
	case err != nil:
		a.Error = "down: " + err.Error()
	case resp.StatusCode != http.StatusOK:
		a.Error = fmt.Sprintf("%s/application answered %s (is this a Weir application's metrics address?)", base, resp.Status)
	case len(body) > maxAppAnswer:
		a.Error = fmt.Sprintf("%s/application answered more than %d bytes", base, maxAppAnswer)
	case !json.Valid(body):
		a.Error = base + "/application did not answer JSON"
	default:
		a.Up, a.Application = true, body
	}
	return a
}
