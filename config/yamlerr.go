package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"
	"gopkg.in/yaml.v3"
)

// yaml.v3 words its unmarshal errors after the Go types ("line 3: cannot
// unmarshal !!str `many` into int", "field idel not found in type
// config.SeriesConfig"): the line is there, the key is not. These match the
// two kinds whose key can be found again in the document.
var (
	reTypeError    = regexp.MustCompile("^line (\\d+): cannot unmarshal (!!\\w+)(?: `(.*)`)? into (.+)$")
	reUnknownField = regexp.MustCompile(`^line (\d+): field (\S+) not found in type \S+$`)
)

// yamlNode is a key or value of the document, with the dotted path of the
// key it belongs to (families[0].labels).
type yamlNode struct {
	line  int
	key   bool // a mapping key (else a value)
	text  string
	path  string
	isMap bool // a value that is a mapping or a sequence
}

// nameKeys rewrites the lines of a *yaml.TypeError from decoding b into a
// Config so that each names the key it is about, in the configuration's
// own terms: "line 3: max_exporters: cannot unmarshal !!str `many` into
// int", "line 2: series.idel: unknown key (known: idle_timeout, ...)". Lines
// it cannot place are kept as they are; any other error is returned as is.
func nameKeys(b []byte, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	var doc yaml.Node
	if yaml.Unmarshal(b, &doc) != nil || len(doc.Content) == 0 {
		return err
	}
	var nodes []yamlNode
	collectNodes(doc.Content[0], "", &nodes)
	// By line, in document order: each error looks at its own line's nodes
	// only (scanning every node for every error took a minute for a
	// document of 80,000 mistyped values).
	byLine := map[int][]yamlNode{}
	for _, n := range nodes {
		byLine[n.line] = append(byLine[n.line], n)
	}
	shown := te.Errors[:min(len(te.Errors), maxYAMLErrors)]
	out := &yaml.TypeError{Errors: make([]string, len(shown), len(shown)+1)}
	for i, msg := range shown {
		out.Errors[i] = nameKey(msg, byLine)
	}
	if n := len(te.Errors) - len(shown); n > 0 {
		out.Errors = append(out.Errors, "and "+strconv.Itoa(n)+" more errors like these")
	}
	return out
}

// maxYAMLErrors is how many of a document's type and unknown-key errors are
// reported: a file that is wrong throughout (a generated one, or the wrong
// file) would otherwise print one line per bad value, thousands of lines
// that bury the first, which is the one to fix.
const maxYAMLErrors = 20

// nameKey rewrites one line of a yaml.TypeError; byLine holds the
// document's nodes by line.
func nameKey(msg string, byLine map[int][]yamlNode) string {
	// The secrets are opaque strings (configopaque.String): to the user,
	// strings.
	msg = strings.Replace(msg, " into "+opaqueType, " into string", 1)
	if m := reUnknownField.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		for _, n := range byLine[line] {
			if n.key && n.text == m[2] {
				known := knownKeys(parentPath(n.path))
				if len(known) == 0 {
					return "line " + m[1] + ": " + n.path + ": unknown key"
				}
				return "line " + m[1] + ": " + n.path + ": unknown key (known: " + strings.Join(known, ", ") + ")"
			}
		}
		return msg
	}
	if m := reTypeError.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		scalar := m[2] != "!!map" && m[2] != "!!seq"
		// A line can hold several values of the kind named: the mapping
		// a block opens with its first key and that key's value, or a
		// document's first line. The one whose key decodes into the Go
		// type named is the one, else the first.
		var found *yamlNode
		for i, n := range byLine[line] {
			if n.key || n.isMap == scalar || (scalar && n.text != m[3]) {
				continue
			}
			if t, ok := typeAt(n.path); ok && typeName(t) == m[4] {
				found = &byLine[line][i]
				break
			}
			if found == nil {
				found = &byLine[line][i]
			}
		}
		if found == nil || found.path == "" {
			return msg // the document itself, or no value found
		}
		return "line " + m[1] + ": " + found.path + ": cannot unmarshal " + strings.TrimPrefix(msg, "line "+m[1]+": cannot unmarshal ")
	}
	return msg
}

// opaqueType is how yaml.v3 names the secrets' type (configopaque.String)
// in its errors; nameKey calls it a string, as the user wrote one.
var opaqueType = reflect.TypeOf(configopaque.String("")).String()

// typeName is how yaml.v3 names t in its errors, as nameKey rewrites them.
func typeName(t reflect.Type) string {
	if s := t.String(); s != opaqueType {
		return s
	}
	return "string"
}

// collectNodes lists n's keys and values under path.
func collectNodes(n *yaml.Node, path string, out *[]yamlNode) {
	switch n.Kind {
	case yaml.MappingNode:
		*out = append(*out, yamlNode{line: n.Line, path: path, isMap: true})
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			*out = append(*out, yamlNode{line: k.Line, key: true, text: k.Value, path: p})
			collectNodes(v, p, out)
		}
	case yaml.SequenceNode:
		*out = append(*out, yamlNode{line: n.Line, path: path, isMap: true})
		for i, v := range n.Content {
			collectNodes(v, path+"["+strconv.Itoa(i)+"]", out)
		}
	case yaml.ScalarNode:
		*out = append(*out, yamlNode{line: n.Line, text: n.Value, path: path})
	}
}

// parentPath is the path of the mapping that holds the key at path.
func parentPath(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

// typeAt returns the Go type a Config decodes the value at path into
// ("" for the whole document, "families[0].labels", "enrich.snmp").
func typeAt(path string) (reflect.Type, bool) {
	t := reflect.TypeOf(Config{})
	if path == "" {
		return t, true
	}
	for _, part := range strings.Split(path, ".") {
		name, depth := part, strings.Count(part, "[")
		if i := strings.IndexByte(part, '['); i >= 0 {
			name = part[:i]
		}
		f, ok := fieldByKey(t, name)
		if !ok {
			return nil, false
		}
		for t = f.Type; depth > 0; depth-- {
			if t.Kind() != reflect.Slice {
				return nil, false
			}
			t = t.Elem()
		}
	}
	return t, true
}

// knownKeys lists the keys a Config accepts in the mapping at path
// ("" for the top level, "families[0]", "enrich.snmp").
func knownKeys(path string) []string {
	t, ok := typeAt(path)
	if !ok || t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for i := range t.NumField() {
		if k := yamlTagKey(t.Field(i)); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	for i := range t.NumField() {
		if yamlTagKey(t.Field(i)) == key {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

func yamlTagKey(f reflect.StructField) string {
	k, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if k == "-" || !f.IsExported() {
		return ""
	}
	return k
}

// wholeNumbers reports the first fractional number given for an integer
// key. yaml.v3 truncates it without a word: "sockets: 2.5" ran two sockets,
// "default_rate: 2.5" corrected by 2, "limit: 99.9" held 99 series. A whole
// number written as a float ("receive_buffer_bytes: 3.2e7") stays accepted.
// b has already been decoded into a Config without error.
func wholeNumbers(b []byte) error {
	var doc yaml.Node
	if yaml.Unmarshal(b, &doc) != nil || len(doc.Content) == 0 {
		return nil
	}
	return checkWhole(doc.Content[0], reflect.TypeOf(Config{}), "")
}

func checkWhole(n *yaml.Node, t reflect.Type, path string) error {
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias != nil {
			return checkWhole(n.Alias, t, path)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			f, ok := fieldByKey(t, k)
			if !ok {
				continue
			}
			p := k
			if path != "" {
				p = path + "." + k
			}
			if err := checkWhole(n.Content[i+1], f.Type, p); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		if t.Kind() != reflect.Slice {
			return nil
		}
		for i, v := range n.Content {
			if err := checkWhole(v, t.Elem(), path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		switch t.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		default:
			return nil
		}
		if t == reflect.TypeOf(time.Duration(0)) || n.ShortTag() != "!!float" {
			return nil
		}
		var f float64
		if n.Decode(&f) == nil && f != math.Trunc(f) {
			return &fractionError{line: n.Line, path: path, value: n.Value}
		}
	}
	return nil
}

// fractionError is a fractional number given for an integer key.
type fractionError struct {
	line        int
	path, value string
}

func (e *fractionError) Error() string {
	return fmt.Sprintf("line %d: %s: %s is not a whole number", e.line, e.path, e.value)
}

// WholeNumbers reports the first fractional number that m, a configuration
// already read into maps (as the Collector's confmap holds it), gives for
// an integer key of Config, naming the key. The Collector's decoder
// (mapstructure) truncates it without a word, as yaml.v3 does: "sockets:
// 2.5" would run two sockets, "default_rate: 2.5" correct by 2. Keys that
// are not Config's are left alone.
func WholeNumbers(m map[string]any) error {
	b, err := yaml.Marshal(m)
	if err != nil {
		return nil // not a configuration the decoder will accept either
	}
	err = wholeNumbers(b)
	if fe, ok := err.(*fractionError); ok {
		// The line would be one of the marshalled copy: name the key only.
		return fmt.Errorf("%s: %s is not a whole number", fe.path, fe.value)
	}
	return err
}
