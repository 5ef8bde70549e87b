//go:debug cryptocustomrand=1

package samplegen_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/netmamba/netmamba/extract"
	"github.com/netmamba/netmamba/samplegen"
)

// TestPipelineReadsSample runs our own ingest pipeline on the sample and
// checks it finds exactly the generated flows, with their packet counts.
func TestPipelineReadsSample(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sample.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := samplegen.Generate(f, samplegen.Options{Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	type counts struct{ packets, src, dst uint64 }
	want := map[[2]string]counts{} // initiator, responder -> counts
	uni, cleaned := 0, 0
	for _, fl := range sum.Flows {
		want[[2]string{fl.Client.String(), fl.Server.String()}] = counts{uint64(fl.ClientPackets + fl.ServerPackets), uint64(fl.ClientPackets), uint64(fl.ServerPackets)}
		for _, n := range []int{fl.ClientPackets, fl.ServerPackets} {
			if n > 0 {
				uni++
			}
		}
		switch fl.App {
		case "DNS", "MDNS", "NetBIOS":
			cleaned++
		}
	}
	got := 0
	rep, err := extract.Files([]string{path}, extract.Options{Bidirectional: true}, func(_ string, fl *extract.Flow) error {
		got++
		k := fl.Key
		ap := func(ip [16]byte, port uint16) string {
			return addrPort(ip, port, k.IPVersion)
		}
		key := [2]string{ap(k.SrcIP, k.SrcPort), ap(k.DstIP, k.DstPort)}
		w, ok := want[key]
		if !ok {
			t.Errorf("unexpected flow %s -> %s", key[0], key[1])
			return nil
		}
		if g := (counts{fl.Stats.Packets, fl.Stats.SrcPackets, fl.Stats.DstPackets}); g != w {
			t.Errorf("flow %s -> %s: packets %+v, want %+v", key[0], key[1], g, w)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != len(sum.Flows) || rep.Packets != uint64(sum.Packets) || len(rep.Skipped) != 0 {
		t.Fatalf("pipeline: %d flows, %d packets, skipped %v; generated %d flows, %d packets", got, rep.Packets, rep.Skipped, len(sum.Flows), sum.Packets)
	}
	rep, err = extract.Files([]string{path}, extract.Options{}, func(string, *extract.Flow) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if rep.Flows != uint64(uni) {
		t.Errorf("unidirectional: %d flows, want %d", rep.Flows, uni)
	}
	rep, err = extract.Files([]string{path}, extract.Options{Bidirectional: true, Clean: true}, func(string, *extract.Flow) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if rep.Flows != uint64(len(sum.Flows)-cleaned) {
		t.Errorf("with Clean: %d flows, want %d (%d DNS/mDNS/NetBIOS flows dropped)", rep.Flows, len(sum.Flows)-cleaned, cleaned)
	}
	t.Logf("pipeline read %d packets into %d bidirectional / %d unidirectional flows", sum.Packets, got, uni)
}

// addrPort formats a flow.Key address the way netip.AddrPort does.
func addrPort(ip [16]byte, port uint16, version uint8) string {
	if version == 4 {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[:4])), port).String()
	}
	return netip.AddrPortFrom(netip.AddrFrom16(ip), port).String()
}
