package checkpoint

import (
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/netmamba/netmamba/model/arch"
)

// FormatVersion is the version of netmamba's metadata conventions written
// under KeyFormatVersion (docs/checkpoint-format.md).
const FormatVersion = "1"

// Metadata keys written by netmamba (docs/checkpoint-format.md). Every value
// is a string, as safetensors requires.
const (
	KeyFormatVersion    = "netmamba.format_version"          // "1"
	KeyConfig           = "netmamba.config"                  // arch.Config as JSON
	KeyClasses          = "netmamba.classes"                 // JSON list of class names, index = label
	KeyDirection        = "netmamba.repr.direction"          // "bi" | "uni"
	KeyCompat           = "netmamba.repr.compat"             // "" (offset-correct) | "official"
	KeyDebias           = "netmamba.repr.debias"             // JSON list of debias strategies, e.g. ["zero_ip"]
	KeySizeMode         = "netmamba.repr.size_mode"          // "unsigned" | "signed"
	KeyTemperature      = "netmamba.calib.temperature"       // float, 1 = uncalibrated
	KeyUnknownThreshold = "netmamba.calib.unknown_threshold" // float: confidence below it -> "unknown"
	KeyData             = "netmamba.prov.data"               // training data description / dataset id
	KeySeed             = "netmamba.prov.seed"               // integer seed
	KeyCommit           = "netmamba.prov.commit"             // netmamba source commit
	KeyCommand          = "netmamba.prov.command"            // command line that produced the file
	KeyCreated          = "netmamba.prov.created"            // RFC 3339 UTC time
	KeyVersion          = "netmamba.prov.version"            // netmamba version
)

// Meta is netmamba's typed view of a checkpoint's string metadata. Zero
// values are not written. Keys that Meta does not know are kept in Extra
// and written back unchanged.
type Meta struct {
	FormatVersion string
	Config        *arch.Config
	Classes       []string
	Repr          ReprMeta
	Calib         CalibMeta
	Prov          ProvMeta
	Extra         map[string]string
}

// ReprMeta records how the model's inputs were built (SPEC §2).
type ReprMeta struct {
	Direction string   // "bi" or "uni"
	Compat    string   // "" (offset-correct) or "official"
	Debias    []string // debias strategies, e.g. "zero_ip"
	SizeMode  string   // "unsigned" or "signed"
}

// CalibMeta holds post-training calibration.
type CalibMeta struct {
	Temperature      float64 // logits are divided by it; 0 = not set
	UnknownThreshold float64 // 0 = not set
	HasThreshold     bool    // UnknownThreshold was set (0 is a valid threshold)
}

// ProvMeta records where a checkpoint came from.
type ProvMeta struct {
	Data    string
	Seed    *int64
	Commit  string
	Command string
	Created time.Time
	Version string
}

// ParseMeta reads netmamba's keys from md. Malformed values of known keys
// are errors; unknown keys go to Extra.
func ParseMeta(md map[string]string) (*Meta, error) {
	m := &Meta{Extra: map[string]string{}}
	for k, v := range md {
		var err error
		switch k {
		case KeyFormatVersion:
			m.FormatVersion = v
		case KeyConfig:
			var c arch.Config
			if err = json.Unmarshal([]byte(v), &c); err == nil {
				m.Config = &c
			}
		case KeyClasses:
			err = json.Unmarshal([]byte(v), &m.Classes)
		case KeyDirection:
			if v != "bi" && v != "uni" {
				err = fmt.Errorf("want bi or uni")
			}
			m.Repr.Direction = v
		case KeyCompat:
			if v != "" && v != "official" {
				err = fmt.Errorf(`want "" or official`)
			}
			m.Repr.Compat = v
		case KeyDebias:
			err = json.Unmarshal([]byte(v), &m.Repr.Debias)
		case KeySizeMode:
			if v != "unsigned" && v != "signed" {
				err = fmt.Errorf("want unsigned or signed")
			}
			m.Repr.SizeMode = v
		case KeyTemperature:
			m.Calib.Temperature, err = strconv.ParseFloat(v, 64)
			if err == nil && !(m.Calib.Temperature > 0) {
				err = fmt.Errorf("temperature must be > 0")
			}
		case KeyUnknownThreshold:
			m.Calib.UnknownThreshold, err = strconv.ParseFloat(v, 64)
			m.Calib.HasThreshold = err == nil
		case KeyData:
			m.Prov.Data = v
		case KeySeed:
			var s int64
			if s, err = strconv.ParseInt(v, 10, 64); err == nil {
				m.Prov.Seed = &s
			}
		case KeyCommit:
			m.Prov.Commit = v
		case KeyCommand:
			m.Prov.Command = v
		case KeyCreated:
			m.Prov.Created, err = time.Parse(time.RFC3339Nano, v)
		case KeyVersion:
			m.Prov.Version = v
		default:
			m.Extra[k] = v
		}
		if err != nil {
			return nil, fmt.Errorf("checkpoint: metadata %s=%q: %w", k, v, err)
		}
	}
	return m, nil
}

// Map encodes m as string metadata (the inverse of ParseMeta). The format
// version is always written.
func (m *Meta) Map() map[string]string {
	md := make(map[string]string, len(m.Extra)+16)
	maps.Copy(md, m.Extra)
	md[KeyFormatVersion] = FormatVersion
	if m.FormatVersion != "" {
		md[KeyFormatVersion] = m.FormatVersion
	}
	if m.Config != nil {
		b, _ := json.Marshal(m.Config) // plain struct: cannot fail
		md[KeyConfig] = string(b)
	}
	if m.Classes != nil {
		b, _ := json.Marshal(m.Classes)
		md[KeyClasses] = string(b)
	}
	setIf(md, KeyDirection, m.Repr.Direction)
	setIf(md, KeyCompat, m.Repr.Compat)
	if m.Repr.Debias != nil {
		b, _ := json.Marshal(m.Repr.Debias)
		md[KeyDebias] = string(b)
	}
	setIf(md, KeySizeMode, m.Repr.SizeMode)
	if m.Calib.Temperature != 0 {
		md[KeyTemperature] = strconv.FormatFloat(m.Calib.Temperature, 'g', -1, 64)
	}
	if m.Calib.HasThreshold {
		md[KeyUnknownThreshold] = strconv.FormatFloat(m.Calib.UnknownThreshold, 'g', -1, 64)
	}
	setIf(md, KeyData, m.Prov.Data)
	if m.Prov.Seed != nil {
		md[KeySeed] = strconv.FormatInt(*m.Prov.Seed, 10)
	}
	setIf(md, KeyCommit, m.Prov.Commit)
	setIf(md, KeyCommand, m.Prov.Command)
	if !m.Prov.Created.IsZero() {
		md[KeyCreated] = m.Prov.Created.UTC().Format(time.RFC3339Nano)
	}
	setIf(md, KeyVersion, m.Prov.Version)
	return md
}

func setIf(md map[string]string, k, v string) {
	if v != "" {
		md[k] = v
	}
}

// SetMetaValue sets key to a user-supplied value (the CLI's --meta
// key=value): short names without the "netmamba." prefix are accepted for
// known keys ("classes", "calib.temperature", "temperature", ...), classes
// and debias may be comma-separated instead of JSON lists. The result is
// checked with ParseMeta.
func SetMetaValue(md map[string]string, key, value string) error {
	full := resolveMetaKey(key)
	if (full == KeyClasses || full == KeyDebias) && !strings.HasPrefix(strings.TrimSpace(value), "[") {
		items := []string{}
		for _, s := range strings.Split(value, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		b, _ := json.Marshal(items)
		value = string(b)
	}
	old, had := md[full]
	md[full] = value
	if _, err := ParseMeta(map[string]string{full: value}); err != nil {
		if had {
			md[full] = old
		} else {
			delete(md, full)
		}
		return err
	}
	return nil
}

// resolveMetaKey maps a short key to its full netmamba key; unknown keys
// are returned unchanged.
func resolveMetaKey(key string) string {
	for _, k := range []string{KeyFormatVersion, KeyConfig, KeyClasses, KeyDirection, KeyCompat, KeyDebias,
		KeySizeMode, KeyTemperature, KeyUnknownThreshold, KeyData, KeySeed, KeyCommit, KeyCommand, KeyCreated, KeyVersion} {
		short := strings.TrimPrefix(k, "netmamba.")
		if key == k || key == short || key == short[strings.LastIndexByte(short, '.')+1:] {
			return k
		}
	}
	return key
}
