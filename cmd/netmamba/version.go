package main

import "runtime/debug"

// linkedCommit is set at link time where the build has no VCS stamp
// (e.g. GOFLAGS=-buildvcs=false): go build -ldflags "-X main.linkedCommit=$(git rev-parse HEAD)".
var linkedCommit string

// buildVersion is netmamba's version: the module version and, when the
// binary was built from a git checkout, the commit (with "+dirty" for
// uncommitted changes).
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v += " " + rev + dirty
	}
	return v
}

// buildCommit is the git commit the binary was built from, or "".
func buildCommit() string {
	if linkedCommit != "" {
		return linkedCommit
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			return s.Value
		}
	}
	return ""
}
