package backend

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// The docs are checked against the code: docs/api.md against every path's
// schema and the backend help, every relative link against the files, and
// every make target named against the Makefile.

const repoRoot = ".."

// apiDoc is what docs/api.md says of one path.
type apiDoc struct {
	request  []string // the fields of its request table
	response []string // the fields of its response tables
}

var (
	pathHeading   = regexp.MustCompile("^### `([^`]+)`\\s*$")
	backticked    = regexp.MustCompile("`([^`]+)`")
	responseLine  = regexp.MustCompile(`(?i)^[#*\s]*response\b`)
	tableRow      = regexp.MustCompile(`^\|(.*)\|\s*$`)
	separatorCell = regexp.MustCompile(`^\s*:?-+:?\s*$`)
)

// parseAPIDoc reads the path sections of docs/api.md: a heading
// "### `path`", then tables. A table whose header's first cell is "field"
// lists request fields, unless it follows a line that starts with
// "Response"; a table headed "response field", or "field" after such a
// line, lists response fields. Other tables (answers, metrics) are not
// fields.
func parseAPIDoc(t *testing.T, text string) (map[string]*apiDoc, []string) {
	t.Helper()
	docs := map[string]*apiDoc{}
	var order []string
	var cur *apiDoc
	inResponse, inFence := false, false
	tableKind := "" // "", "request", "response" or "other"
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		if strings.HasPrefix(line, "## ") {
			cur = nil // a section that is not a path
			continue
		}
		if m := pathHeading.FindStringSubmatch(line); m != nil {
			if docs[m[1]] != nil {
				t.Errorf("docs/api.md: path %q has two sections", m[1])
			}
			cur = &apiDoc{}
			docs[m[1]] = cur
			order = append(order, m[1])
			inResponse, tableKind = false, ""
			continue
		}
		if cur == nil {
			continue
		}
		m := tableRow.FindStringSubmatch(line)
		if m == nil {
			tableKind = ""
			if responseLine.MatchString(line) {
				inResponse = true
			}
			continue
		}
		cells := strings.Split(m[1], "|")
		first := strings.TrimSpace(cells[0])
		switch {
		case tableKind == "":
			// The header row.
			switch {
			case first == "response field", first == "field" && inResponse:
				tableKind = "response"
			case first == "field":
				tableKind = "request"
			default:
				tableKind = "other"
			}
			continue
		case separatorCell.MatchString(cells[0]):
			continue
		}
		var names []string
		for _, f := range backticked.FindAllStringSubmatch(first, -1) {
			names = append(names, f[1])
		}
		switch tableKind {
		case "request":
			if len(names) != 1 {
				t.Errorf("docs/api.md: a request table row of %q names %d fields, want one in backticks: %s", order[len(order)-1], len(names), line)
			}
			cur.request = append(cur.request, names...)
		case "response":
			cur.response = append(cur.response, names...)
		}
	}
	return docs, order
}

// literalPrefix is a path pattern's text before its first regular
// expression: "config/" for config/<name>, "status" for "status/?$".
func literalPrefix(pattern string) string {
	var out []rune
	for _, r := range pattern {
		switch r {
		case '?', '*', '+', '{':
			// A quantifier makes the character before it optional.
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			return string(out)
		case '(', '[', '\\', '.', '^', '$', '|':
			return string(out)
		}
		out = append(out, r)
	}
	return string(out)
}

// docHeading is the docs/api.md heading of a path pattern: its literal
// prefix, followed by <name> when the pattern captures a name.
func docHeading(pattern string) string {
	h := literalPrefix(pattern)
	if strings.Contains(pattern, "(?P<name>") {
		return h + "<name>"
	}
	return h
}

// sameHeading compares headings without their trailing slash: the list
// path is "config/" in the docs and "config/?$" in the schema.
func sameHeading(h string) string { return strings.TrimSuffix(h, "/") }

func readDoc(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDocsAPIMatchesSchema: every path of the backend has its section in
// docs/api.md, every request field there is in the path's schema, and
// every schema field but the name is listed.
func TestDocsAPIMatchesSchema(t *testing.T) {
	b := newBackend(&logical.BackendConfig{})
	docs, order := parseAPIDoc(t, readDoc(t, "docs/api.md"))
	if len(order) == 0 {
		t.Fatal("docs/api.md: no path sections (### `path`)")
	}
	byKey := map[string]string{}
	for _, h := range order {
		byKey[sameHeading(h)] = h
	}
	seen := map[string]bool{}
	for _, p := range b.Backend.Paths {
		want := docHeading(p.Pattern)
		h, ok := byKey[sameHeading(want)]
		if !ok {
			t.Errorf("docs/api.md has no section ### `%s` for the path pattern %q", want, p.Pattern)
			continue
		}
		seen[h] = true
		doc := docs[h]
		listed := map[string]bool{}
		for _, f := range doc.request {
			if listed[f] {
				t.Errorf("docs/api.md: %s lists the request field %q twice", h, f)
			}
			listed[f] = true
			if _, ok := p.Fields[f]; !ok {
				t.Errorf("docs/api.md: %s lists the request field %q, which its schema does not have", h, f)
			}
		}
		var missing []string
		for f := range p.Fields {
			if f != "name" && !listed[f] {
				missing = append(missing, f)
			}
		}
		sort.Strings(missing)
		for _, f := range missing {
			t.Errorf("docs/api.md: %s does not list the schema field %q in its request table", h, f)
		}
	}
	for _, h := range order {
		if !seen[h] {
			t.Errorf("docs/api.md: section ### `%s` matches no path of the backend", h)
		}
	}
}

// TestDocsAPIResponseFields: every field that a read or write of a
// configured organization answers is documented in docs/api.md, among the
// path's response fields (or, for a config read, its request fields).
func TestDocsAPIResponseFields(t *testing.T) {
	docs, _ := parseAPIDoc(t, readDoc(t, "docs/api.md"))
	documented := func(heading string, withRequest bool) map[string]bool {
		d := docs[heading]
		if d == nil {
			t.Fatalf("docs/api.md has no section ### `%s`", heading)
		}
		set := map[string]bool{}
		for _, f := range d.response {
			set[f] = true
		}
		if withRequest {
			for _, f := range d.request {
				set[f] = true
			}
		}
		return set
	}
	check := func(what, heading string, data map[string]interface{}, withRequest bool) {
		t.Helper()
		if len(data) == 0 {
			t.Errorf("%s answered no fields", what)
		}
		known := documented(heading, withRequest)
		var missing []string
		for f := range data {
			if !known[f] {
				missing = append(missing, f)
			}
		}
		sort.Strings(missing)
		for _, f := range missing {
			t.Errorf("%s answers %q, which docs/api.md does not list under %s", what, f, heading)
		}
	}

	e := newTestEnv(t)
	e.configure("acme", map[string]interface{}{
		"org_id":            testOrgID,
		"data_path":         e.simOrg().DataPath,
		"rotation_schedule": "0 3 1 * *",
		"rotation_window":   "2h",
	})
	check("a rotate", "rotate/<name>", e.mustRotate("acme").Data, false)
	check("a config read", "config/<name>", e.mustRead("config/acme").Data, true)
	check("a creds read", "creds/<name>", e.mustRead("creds/acme").Data, false)
	check("a verify", "verify/<name>", e.mustWrite("verify/acme", nil).Data, false)
	check("a graceful rotate", "rotate/<name>", e.mustWrite("rotate/acme", map[string]interface{}{"graceful": true}).Data, false)
	status := e.mustRead("status").Data
	line, _ := status["config/acme"].(string)
	if line == "" {
		t.Fatalf("status has no line for acme: %v", status)
	}
	delete(status, "config/acme")
	status["config/<name>"] = line
	check("a status read", "status", status, false)
	fields := map[string]interface{}{}
	for _, pair := range statusLineField.FindAllStringSubmatch(line, -1) {
		fields[pair[1]] = true
	}
	check("a status line", "status", fields, false)
	check("an import", "import/<name>", e.mustWrite("import/acme", e.refreshed()).Data, false)
}

// statusLineField is a field=value pair of a status line.
var statusLineField = regexp.MustCompile(`(?:^|\s)([a-z_]+)=`)

// TestDocsAPIPathsInBackendHelp: every path docs/api.md documents is named
// in the backend's help (vault path-help cisco-s3).
func TestDocsAPIPathsInBackendHelp(t *testing.T) {
	_, order := parseAPIDoc(t, readDoc(t, "docs/api.md"))
	for _, h := range order {
		if !regexp.MustCompile(`(^|\s)`+regexp.QuoteMeta(strings.TrimSuffix(h, "/"))+`/?(\s|$)`).MatchString(backendHelp) &&
			!(strings.HasSuffix(h, "/") && strings.Contains(backendHelp, h)) {
			t.Errorf("the backend help does not name %s, which docs/api.md documents", h)
		}
	}
}

// userDocs are the Markdown files whose links and make targets are checked.
func userDocs(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md", "CHANGELOG.md"}
	more, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(more) == 0 {
		t.Fatal("no docs/*.md")
	}
	for _, f := range more {
		rel, err := filepath.Rel(repoRoot, f)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, rel)
	}
	return files
}

var mdLink = regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)

// withoutCode drops fenced blocks and inline code, where brackets are not
// links.
func withoutCode(text string) string {
	var out []string
	inFence := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
			continue
		}
		if !inFence {
			out = append(out, backticked.ReplaceAllString(line, "code"))
		}
	}
	return strings.Join(out, "\n")
}

// anchors are the GitHub anchors of a Markdown file's headings.
func anchors(text string) map[string]bool {
	set := map[string]bool{}
	count := map[string]int{}
	inFence := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
			continue
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		var slug strings.Builder
		for _, r := range h {
			switch {
			case r == ' ':
				slug.WriteRune('-')
			case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r > 127:
				slug.WriteRune(r)
			}
		}
		s := slug.String()
		if n := count[s]; n > 0 {
			set[s+"-"+strconv.Itoa(n)] = true
		} else {
			set[s] = true
		}
		count[s]++
	}
	return set
}

// TestDocsLinks: every relative link points at a file that exists, and at
// a heading of it when it names one.
func TestDocsLinks(t *testing.T) {
	for _, doc := range userDocs(t) {
		text := readDoc(t, doc)
		for _, m := range mdLink.FindAllStringSubmatch(withoutCode(text), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			rel := doc
			if file != "" {
				rel = filepath.Join(filepath.Dir(doc), file)
				if _, err := os.Stat(filepath.Join(repoRoot, rel)); err != nil {
					t.Errorf("%s links to %s, which does not exist", doc, target)
					continue
				}
			}
			if anchor == "" || !strings.HasSuffix(rel, ".md") {
				continue
			}
			if !anchors(readDoc(t, rel))[anchor] {
				t.Errorf("%s links to %s, whose file has no heading #%s", doc, target, anchor)
			}
		}
	}
}

var (
	makeTarget = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9_.-]*)\s*:([^=]|$)`)
	makeCall   = regexp.MustCompile(`(?:^|[\s;&|(])make\s+((?:[A-Z_]+=\S*\s+)*)([a-z][a-z0-9-]*)`)
)

// TestDocsMakeTargets: every `make <target>` in code of the docs is a
// target of the Makefile.
func TestDocsMakeTargets(t *testing.T) {
	targets := map[string]bool{}
	for _, line := range strings.Split(readDoc(t, "Makefile"), "\n") {
		if m := makeTarget.FindStringSubmatch(line); m != nil {
			targets[m[1]] = true
		}
	}
	if !targets["test"] || !targets["dev"] {
		t.Fatalf("read no targets from the Makefile: %v", targets)
	}
	for _, doc := range userDocs(t) {
		var code []string
		inFence := false
		for _, line := range strings.Split(readDoc(t, doc), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "```") {
				inFence = !inFence
				continue
			}
			if inFence {
				code = append(code, line)
				continue
			}
			for _, m := range backticked.FindAllStringSubmatch(line, -1) {
				code = append(code, m[1])
			}
		}
		for _, c := range code {
			for _, m := range makeCall.FindAllStringSubmatch(c, -1) {
				if !targets[m[2]] {
					t.Errorf("%s names make %s, which is not a target of the Makefile", doc, m[2])
				}
			}
		}
	}
}

// make help lists every target: each one the Makefile declares phony has a
// "## " line of its own on its rule, which make help prints.
func TestMakeHelpListsEveryTarget(t *testing.T) {
	makefile := readDoc(t, "Makefile")
	phony := regexp.MustCompile(`(?m)^\.PHONY:(.*)$`).FindStringSubmatch(makefile)
	if phony == nil {
		t.Fatal("the Makefile has no .PHONY line")
	}
	listed := regexp.MustCompile(`(?m)^([a-z][a-z0-9-]*):[^#\n]*## \S`)
	help := map[string]bool{}
	for _, m := range listed.FindAllStringSubmatch(makefile, -1) {
		help[m[1]] = true
	}
	for _, target := range strings.Fields(phony[1]) {
		if !help[target] {
			t.Errorf("make help does not list %s: give its rule a \"## what it does\" comment", target)
		}
	}
}
