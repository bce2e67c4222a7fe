package histimport

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// The CSV format: a header row naming the columns, then one attribute
// instance per row. Fields are split by hand (bytes.IndexByte) rather than
// with encoding/csv, which allocates every field of every row: RFC 4180
// quoting is honoured (a quoted field may hold commas, doubled quotes and
// line breaks) on a slower path taken only by rows that contain a quote.

// Column roles.
const (
	colID = iota
	colType
	colAttr
	colTime
	colValue
	colUnit
	colDataset
	nRoles
)

var roleNames = [nRoles]string{"entityId", "type", "attribute", "time", "value", "unit", "datasetId"}

// columnRole maps a header name (any case) to its role.
func columnRole(h string) (int, bool) {
	switch strings.ToLower(h) {
	case "entityid", "entity", "id":
		return colID, true
	case "type", "entitytype":
		return colType, true
	case "attribute", "attr", "attrname", "attributename":
		return colAttr, true
	case "time", "observedat", "timestamp", "datetime":
		return colTime, true
	case "value":
		return colValue, true
	case "unit", "unitcode":
		return colUnit, true
	case "datasetid", "dataset":
		return colDataset, true
	}
	return 0, false
}

// csvCols says which field holds what.
type csvCols struct {
	at [nRoles]int // field index of each role, -1 when absent
	n  int         // fields per row
}

// parseHeader reads the header row.
func parseHeader(line []byte) (csvCols, error) {
	line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
	var c csvCols
	for i := range c.at {
		c.at[i] = -1
	}
	var sc splitter
	fields, err := sc.split(line)
	if err != nil {
		return c, fmt.Errorf("the header row: %w", err)
	}
	c.n = len(fields)
	for i, f := range fields {
		name := string(f)
		r, ok := columnRole(name)
		if !ok {
			return c, fmt.Errorf("the header row names a column %q zenne does not know: the columns are entityId, attribute, time, value, unit and optionally type and datasetId", name)
		}
		if c.at[r] >= 0 {
			return c, fmt.Errorf("the header row names the %s column twice", roleNames[r])
		}
		c.at[r] = i
	}
	var missing []string
	for _, r := range []int{colID, colAttr, colTime, colValue} {
		if c.at[r] < 0 {
			missing = append(missing, roleNames[r])
		}
	}
	if len(missing) > 0 {
		return c, fmt.Errorf("the header row has no %s column (found %q; expected entityId,attribute,time,value,unit with optional type and datasetId)",
			strings.Join(missing, ", "), string(line))
	}
	return c, nil
}

// splitter splits a record into fields, reusing its buffers.
type splitter struct {
	fields [][]byte
	buf    []byte // unquoted fields of the slow path
	ends   []int
}

// split returns the fields of a record (without its line end), trimmed of
// spaces. The fields alias line or the splitter's buffer until the next call.
func (s *splitter) split(line []byte) ([][]byte, error) {
	s.fields = s.fields[:0]
	if bytes.IndexByte(line, '"') >= 0 {
		return s.splitQuoted(line)
	}
	for {
		i := bytes.IndexByte(line, ',')
		if i < 0 {
			s.fields = append(s.fields, trimSpace(line))
			return s.fields, nil
		}
		s.fields = append(s.fields, trimSpace(line[:i]))
		line = line[i+1:]
	}
}

// splitQuoted is the RFC 4180 path: "a ""quoted"", field", spaces around
// the quotes allowed.
func (s *splitter) splitQuoted(line []byte) ([][]byte, error) {
	s.buf, s.ends = s.buf[:0], s.ends[:0]
	i := 0
	for {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		if i < len(line) && line[i] == '"' {
			i++
			for {
				j := bytes.IndexByte(line[i:], '"')
				if j < 0 {
					return nil, rowError("a quoted field has no closing quote")
				}
				s.buf = append(s.buf, line[i:i+j]...)
				i += j + 1
				if i < len(line) && line[i] == '"' {
					s.buf = append(s.buf, '"')
					i++
					continue
				}
				break
			}
			for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
				i++
			}
			if i < len(line) && line[i] != ',' {
				return nil, rowError("a quoted field is followed by text before the next comma")
			}
		} else {
			j := bytes.IndexByte(line[i:], ',')
			if j < 0 {
				j = len(line) - i
			}
			f := line[i : i+j]
			if bytes.IndexByte(f, '"') >= 0 {
				return nil, rowError(`a field has a quote inside: quote the whole field and double its quotes ("a ""b""")`)
			}
			s.buf = append(s.buf, trimSpace(f)...)
			i += j
		}
		s.ends = append(s.ends, len(s.buf))
		if i >= len(line) {
			break
		}
		i++ // the comma
	}
	start := 0
	for _, end := range s.ends {
		s.fields = append(s.fields, s.buf[start:end:end])
		start = end
	}
	return s.fields, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// csvParser turns records into import records.
type csvParser struct {
	cols     csvCols
	names    *names
	sp       splitter
	recorded time.Time // the instances' modifiedAt
}

// row parses one record (without its line end) into rec and a, and returns
// its entity.
func (p *csvParser) row(line []byte, rec *store.ImportRecord, a *ngsild.Attribute) (*entity, error) {
	f, err := p.sp.split(line)
	if err != nil {
		return nil, err
	}
	if len(f) != p.cols.n {
		return nil, rowError(fmt.Sprintf("%d fields, but the header names %d columns", len(f), p.cols.n))
	}
	at := &p.cols.at
	id := f[at[colID]]
	if len(id) == 0 {
		return nil, rowError("no entityId")
	}
	e := p.names.entity(id)
	if e.err != "" {
		return nil, rowError(e.err)
	}
	types := e.idTypes
	if at[colType] >= 0 && len(f[at[colType]]) > 0 {
		r := p.names.typesOf(p.names.str(f[at[colType]]))
		if r.err != "" {
			return nil, rowError(r.err)
		}
		types = r.types
	}
	if types == nil {
		return nil, rowError("no entity type: the id " + quote(e.id) + " is not of the form urn:ngsi-ld:<Type>:<name>, so add a type column")
	}
	attr := f[at[colAttr]]
	if len(attr) == 0 {
		return nil, rowError("no attribute name")
	}
	n := p.names.attr(attr)
	if n.err != "" {
		return nil, rowError(n.err)
	}
	if ngsild.IsGeoName(n.iri) {
		return nil, rowError(quote(string(attr)) + " is a GeoProperty, whose values are GeoJSON geometries: import it in the JSON format")
	}
	t, err := timeOf(f[at[colTime]])
	if err != nil {
		return nil, err
	}
	v, err := p.value(f[at[colValue]])
	if err != nil {
		return nil, err
	}
	*a = ngsild.Attribute{Kind: ngsild.Property, Value: v, ObservedAt: t, ModifiedAt: p.recorded}
	if at[colUnit] >= 0 && len(f[at[colUnit]]) > 0 {
		a.UnitCode = p.names.str(f[at[colUnit]])
	}
	if at[colDataset] >= 0 && len(f[at[colDataset]]) > 0 {
		ds, err := p.names.dataset(f[at[colDataset]])
		if err != nil {
			return nil, err
		}
		a.DatasetID = ds
	}
	if e.types == nil {
		e.types = types
	}
	*rec = store.ImportRecord{EntityID: e.id, Types: types, Name: n.iri, Attr: a}
	return e, nil
}

// value types a value field: a JSON number is a number, true and false are
// booleans, anything else is a string.
func (p *csvParser) value(b []byte) (any, error) {
	if len(b) == 0 {
		return nil, rowError("no value")
	}
	switch string(b) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	if isJSONNumber(b) {
		// The string does not outlive the call (the error is not kept).
		f, err := strconv.ParseFloat(unsafe.String(&b[0], len(b)), 64)
		if err != nil {
			return nil, rowError("the number " + quote(string(b)) + " is out of range")
		}
		return f, nil
	}
	return p.names.str(b), nil
}

// isJSONNumber reports whether b is a number in JSON syntax:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isJSONNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	return i == len(b)
}

// maxRecord and maxRecordLines bound one CSV record (a quoted field may
// span lines).
const (
	maxRecord      = 16 << 20
	maxRecordLines = 10_000
)

// csvSource reads a CSV file record by record.
type csvSource struct {
	br     *bufio.Reader
	p      csvParser
	line   int64  // lines consumed
	offset int64  // bytes consumed
	long   []byte // a line longer than the reader's buffer
	joined []byte // a record of several lines
	eof    bool
}

func newCSVSource(r io.Reader, n *names, recorded time.Time) (*csvSource, error) {
	s := &csvSource{br: bufio.NewReaderSize(r, 1<<20), p: csvParser{names: n, recorded: recorded}}
	for {
		rec, _, err := s.record()
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if len(bytes.TrimSpace(rec)) > 0 {
			if s.p.cols, err = parseHeader(rec); err != nil {
				return nil, err
			}
			return s, nil
		}
		if s.eof {
			return nil, errors.New("the file is empty: a CSV file starts with a header row such as entityId,attribute,time,value,unit")
		}
	}
}

// record returns the next record without its line end, and the number of
// the line it starts on. At the end of the file it returns io.EOF (with the
// last record if the file does not end with a line break). Record lines
// alias the reader's buffer until the next call.
func (s *csvSource) record() ([]byte, int64, error) {
	if s.eof {
		return nil, s.line, io.EOF
	}
	line, err := s.readLine()
	first := s.line
	if err != nil {
		return line, first, err
	}
	if bytes.IndexByte(line, '"') >= 0 && openQuote(line) {
		// A quoted field goes on on the next line.
		s.joined = append(s.joined[:0], line...)
		for openQuote(s.joined) && !s.eof {
			if len(s.joined) > maxRecord || s.line-first > maxRecordLines {
				return nil, first, fmt.Errorf("line %d: a quoted field is not closed within %d lines: fix its quotes", first, s.line-first)
			}
			next, err := s.readLine()
			if err != nil {
				return nil, first, err
			}
			s.joined = append(append(s.joined, '\n'), next...)
		}
		line = s.joined
	}
	if s.eof && len(line) == 0 {
		return nil, first, io.EOF
	}
	return line, first, nil
}

// readLine reads one line and strips its \n or \r\n; it sets eof at the end.
func (s *csvSource) readLine() ([]byte, error) {
	line, err := s.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		s.long = append(s.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(s.long) > maxRecord {
				return nil, fmt.Errorf("line %d is longer than %d MiB", s.line+1, maxRecord>>20)
			}
			line, err = s.br.ReadSlice('\n')
			s.long = append(s.long, line...)
		}
		line = s.long
	}
	switch {
	case errors.Is(err, io.EOF):
		s.eof = true
	case err != nil:
		return nil, err
	}
	if len(line) == 0 {
		return line, nil
	}
	s.offset += int64(len(line))
	s.line++
	if line[len(line)-1] == '\n' {
		line = line[:len(line)-1]
	}
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, nil
}

// fill adds records to b until it holds b's size of rows or the file ends.
// Rows on lines up to skip are parsed for the entities' current state but
// neither imported nor reported (a resumed import did them before).
func (s *csvSource) fill(b *batch, skip int64) (done bool, err error) {
	for b.rows < b.size {
		rec, lineNo, err := s.record()
		if err != nil && !errors.Is(err, io.EOF) {
			return false, err
		}
		if len(rec) > 0 && !blank(rec) {
			b.rows++
			i := len(b.recs)
			b.recs = b.recs[:i+1]
			a := &b.attrs[i]
			e, perr := s.p.row(rec, &b.recs[i], a)
			switch {
			case perr != nil:
				b.recs = b.recs[:i]
				if lineNo > skip {
					b.reject(lineNo, fmt.Sprintf("line %d", lineNo), perr, rec)
				}
			case lineNo <= skip:
				e.observe(b.recs[i].Name, a)
				b.recs = b.recs[:i]
			default:
				e.observe(b.recs[i].Name, a)
			}
		}
		b.end = Position{Offset: s.offset, Line: s.line}
		if err != nil { // io.EOF
			return true, nil
		}
	}
	return false, nil
}

// openQuote reports whether a record ends inside a quoted field: a field
// that starts with a quote (after spaces) whose closing quote has not come.
// A quote inside an unquoted field does not open anything (the row is
// rejected), so one stray quote cannot swallow the lines after it.
func openQuote(b []byte) bool {
	fieldStart, inQuotes := true, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inQuotes:
			if c == '"' {
				if i+1 < len(b) && b[i+1] == '"' {
					i++
				} else {
					inQuotes = false
				}
			}
		case c == ',':
			fieldStart = true
		case c == ' ' || c == '\t':
		case c == '"' && fieldStart:
			inQuotes, fieldStart = true, false
		default:
			fieldStart = false
		}
	}
	return inQuotes
}

func blank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}
