package replication

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Version is what a build of this package can read: the highest command
// type of the log and the highest snapshot stream format. Every node
// advertises its own (methodVersion); the cluster's active version is the
// lowest over the members of the configuration, and a leader proposes no
// entry type above it. See DESIGN.md, "Rolling upgrades".
type Version struct {
	Commands CommandType `json:"commands"`
	Snapshot uint8       `json:"snapshot"`
}

// BuildVersion is this build's version.
var BuildVersion = Version{Commands: CommandClusterID, Snapshot: snapshotFormat}

// legacyVersion is assumed of a member that cannot say: builds from before
// versions were advertised apply commits only, and read snapshot format 1.
// A member that cannot be reached counts as legacy too, since it may come
// back as such a build.
var legacyVersion = Version{Commands: CommandCommit, Snapshot: 1}

// min is the version both v and o can read.
func (v Version) min(o Version) Version {
	return Version{Commands: min(v.Commands, o.Commands), Snapshot: min(v.Snapshot, o.Snapshot)}
}

func (v Version) String() string {
	return fmt.Sprintf("commands %d, snapshot %d", v.Commands, v.Snapshot)
}

// encodeVersion is methodVersion's answer: u8 commands ‖ u8 snapshot ‖
// uvarint len ‖ build. Later builds may append fields; decoding ignores
// what follows.
func encodeVersion(v Version, build string) []byte {
	return appendBytes([]byte{byte(v.Commands), v.Snapshot}, []byte(build))
}

func decodeVersion(b []byte) (Version, string, error) {
	d := decoder{buf: b}
	v := Version{Commands: CommandType(d.byte()), Snapshot: d.byte()}
	build := d.bytes()
	if d.err != nil {
		return Version{}, "", d.err
	}
	if v.Commands < CommandCommit || v.Snapshot < 1 {
		return Version{}, "", fmt.Errorf("%w: version %v", ErrBadCommand, v)
	}
	return v, string(build), nil
}

// advertised is the version this node tells the others.
func (g *Group) advertised() Version {
	if g.cfg.AdvertiseVersion != (Version{}) {
		return g.cfg.AdvertiseVersion
	}
	return BuildVersion
}

// MemberVersion is what a member advertised when last asked.
type MemberVersion struct {
	Version
	// Build is the member's build name; "legacy" for a build from before
	// versions were advertised.
	Build string `json:"build"`
	// Known is false when the member could not be asked; Version is then
	// the legacy one it is assumed to have.
	Known bool `json:"known"`
}

// versions keeps the last answer of each member and the active version
// they make.
type versions struct {
	mu     sync.Mutex
	byID   map[raft.ServerID]MemberVersion
	active *Version
}

// versionPollEvery is how often each node asks its peers, for /status and
// so that a leader rarely waits on the question when it needs the answer.
const versionPollEvery = 2 * time.Second

// ClusterVersion asks every member of the configuration for its version,
// now, and returns the lowest: what every member can apply. A member that
// does not answer counts as legacy.
func (g *Group) ClusterVersion(ctx context.Context) (Version, error) {
	cf := g.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return Version{}, g.leaderErr(err)
	}
	servers := cf.Configuration().Servers
	answers := make([]MemberVersion, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		if s.ID == g.cfg.ID {
			answers[i] = MemberVersion{Version: g.advertised(), Build: g.cfg.Build, Known: true}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = g.askVersion(ctx, string(s.Address))
		}()
	}
	wg.Wait()
	active := g.advertised()
	byID := make(map[raft.ServerID]MemberVersion, len(servers))
	for i, s := range servers {
		active = active.min(answers[i].Version)
		byID[s.ID] = answers[i]
	}
	g.versions.mu.Lock()
	g.versions.byID = byID
	g.versions.active = &active
	g.versions.mu.Unlock()
	return active, nil
}

// askVersion asks the member at addr. A build from before versions were
// advertised answers the unknown method as "no such method" when it leads,
// and as "not the leader" otherwise (it checks leadership first).
func (g *Group) askVersion(ctx context.Context, addr string) MemberVersion {
	if g.node == nil {
		// A group on its own transport (embedded use, tests) has no way to
		// ask; its members are this build by construction.
		return MemberVersion{Version: g.advertised(), Build: g.cfg.Build}
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	resp, err := g.node.rpc.call(ctx, addr, g.id, methodVersion, 0, nil)
	if errors.Is(err, errTransport) && ctx.Err() == nil {
		// A pooled connection to a member that restarted since fails
		// once; the question is harmless to ask again.
		resp, err = g.node.rpc.call(ctx, addr, g.id, methodVersion, 0, nil)
	}
	var nl *NotLeaderError
	switch {
	case err == nil:
		v, build, derr := decodeVersion(resp)
		if derr != nil {
			g.logger.Warn("peer's version unreadable; assuming the oldest", "addr", addr, "error", derr)
			return MemberVersion{Version: legacyVersion}
		}
		return MemberVersion{Version: v, Build: build, Known: true}
	case errors.Is(err, errNoMethod), errors.As(err, &nl):
		return MemberVersion{Version: legacyVersion, Build: "legacy", Known: true}
	}
	return MemberVersion{Version: legacyVersion}
}

// pollVersions keeps the members' versions current for Status.
func (g *Group) pollVersions() {
	defer g.bg.Done()
	t := time.NewTicker(versionPollEvery)
	defer t.Stop()
	ctx, cancel := g.untilShutdown(inBackground(context.Background()))
	defer cancel()
	for {
		_, _ = g.ClusterVersion(ctx)
		select {
		case <-t.C:
		case <-g.stop:
			return
		}
	}
}

// errVersionGated: an entry type some member cannot apply yet.
var errVersionGated = errors.New("replication: a member's build cannot apply this entry type yet")

// requireCommands refuses, on a leader, to propose command type t until
// every member advertises it. It asks the members now, so an answer cached
// from before a member was replaced by an older build cannot let it
// through.
func (g *Group) requireCommands(ctx context.Context, t CommandType) error {
	v, err := g.ClusterVersion(ctx)
	if err != nil {
		return err
	}
	if v.Commands < t {
		return fmt.Errorf("%w: command type %d, cluster's active version is %v", errVersionGated, t, v)
	}
	return nil
}

func (g *Group) memberVersions() (map[raft.ServerID]MemberVersion, *Version) {
	g.versions.mu.Lock()
	defer g.versions.mu.Unlock()
	return g.versions.byID, g.versions.active
}
