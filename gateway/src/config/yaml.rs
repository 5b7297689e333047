//! Reads multi-document YAML into `serde_yaml::Value`s while remembering where every
//! field was written, so errors found after deserializing can still name file:line.
//!
//! serde_yaml only reports locations for syntax and type errors; this walks the
//! parser's marked events once and builds both the values and a path → line map.

use serde_yaml::{Mapping, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// One `---`-separated document.
#[derive(Debug)]
pub struct Document {
    pub value: Value,
    /// 1-based line and column of the document's first node.
    pub line: u32,
    pub column: u32,
    /// (path, line, column), sorted by path: `spec.http[1].route[0].weight`.
    pub fields: Vec<(String, u32, u32)>,
}

/// A syntax error with its 1-based position.
#[derive(Debug, Clone)]
pub struct SyntaxError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

/// Parses every document of `text`. Documents before a syntax error are returned;
/// the error ends the stream (YAML cannot resynchronise reliably after one).
pub fn parse_documents(text: &str) -> (Vec<Document>, Option<SyntaxError>) {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    let err = parser.load(&mut builder, true).err().map(|e| SyntaxError {
        line: e.marker().line() as u32,
        column: e.marker().col() as u32 + 1,
        message: e.info().to_string(),
    });
    if let Some(bomb) = builder.alias_overflow {
        builder.docs.truncate(bomb.docs_before);
        let message = format!("aliases here expand to more than {MAX_ALIAS_NODES} values; write the values out or nest fewer aliases");
        let err = SyntaxError {
            line: bomb.line,
            column: bomb.column,
            message,
        };
        return (builder.docs, Some(err));
    }
    (builder.docs, err)
}

/// How many values aliases may copy in one stream. Real configs copy a few; a file of
/// aliases of aliases (a "billion laughs") would otherwise exhaust memory.
pub const MAX_ALIAS_NODES: usize = 100_000;

/// Where alias expansion passed the limit, and how many documents were complete then.
#[derive(Debug, Clone, Copy)]
struct AliasOverflow {
    line: u32,
    column: u32,
    docs_before: usize,
}

/// How many values `v` holds, itself included.
fn node_count(v: &Value) -> usize {
    match v {
        Value::Sequence(s) => 1 + s.iter().map(node_count).sum::<usize>(),
        Value::Mapping(m) => {
            1 + m
                .iter()
                .map(|(k, v)| node_count(k) + node_count(v))
                .sum::<usize>()
        }
        Value::Tagged(t) => 1 + node_count(&t.value),
        _ => 1,
    }
}

enum Frame {
    Map {
        map: Mapping,
        key: Option<Value>,
        path: String,
    },
    Seq {
        seq: Vec<Value>,
        path: String,
    },
}

#[derive(Default)]
struct Builder {
    docs: Vec<Document>,
    stack: Vec<Frame>,
    /// (anchor id, value, node count of the value)
    anchors: Vec<(usize, Value, usize)>,
    /// Values copied by aliases so far.
    alias_nodes: usize,
    alias_overflow: Option<AliasOverflow>,
    fields: Vec<(String, u32, u32)>,
    doc_start: Option<(u32, u32)>,
    /// Anchor ids of containers being built, to record once they close.
    open_anchors: Vec<usize>,
}

fn pos(mark: &Marker) -> (u32, u32) {
    (mark.line() as u32, mark.col() as u32 + 1)
}

impl Builder {
    /// The path a new node at this point will have, or None when the next scalar is a
    /// mapping key.
    fn child_path(&self) -> Option<String> {
        match self.stack.last() {
            None => Some(String::new()),
            Some(Frame::Map { key: None, .. }) => None,
            Some(Frame::Map {
                key: Some(k), path, ..
            }) => {
                let k = key_text(k);
                Some(if path.is_empty() {
                    k
                } else {
                    format!("{path}.{k}")
                })
            }
            Some(Frame::Seq { seq, path }) => Some(format!("{path}[{}]", seq.len())),
        }
    }

    /// Puts a finished node where it belongs: a mapping value, a sequence item, or a
    /// finished document.
    fn attach(&mut self, value: Value) {
        match self.stack.last_mut() {
            None if value.is_null() => {
                // An empty document (`---` then nothing): no resource.
                self.fields.clear();
                self.doc_start = None;
            }
            None => {
                let (line, column) = self.doc_start.take().unwrap_or((1, 1));
                let mut fields = std::mem::take(&mut self.fields);
                fields.sort_by(|a, b| a.0.cmp(&b.0));
                fields.dedup_by(|a, b| a.0 == b.0);
                self.docs.push(Document {
                    value,
                    line,
                    column,
                    fields,
                });
            }
            Some(Frame::Map { map, key, .. }) => match key.take() {
                Some(k) => {
                    map.insert(k, value);
                }
                None => *key = Some(value),
            },
            Some(Frame::Seq { seq, .. }) => seq.push(value),
        }
    }

    fn note(&mut self, mark: &Marker) {
        if self.doc_start.is_none() {
            self.doc_start = Some(pos(mark));
        }
        // Mapping keys locate their field; sequence items locate themselves.
        let is_key = matches!(self.stack.last(), Some(Frame::Map { key: None, .. }));
        if is_key {
            return;
        }
        if let Some(path) = self.child_path() {
            if !path.is_empty() && !matches!(self.stack.last(), Some(Frame::Map { .. })) {
                let (l, c) = pos(mark);
                self.fields.push((path, l, c));
            }
        }
    }

    fn note_key(&mut self, key: &Value, mark: &Marker) {
        if let Some(Frame::Map { path, map, .. }) = self.stack.last() {
            let (l, c) = pos(mark);
            if map.is_empty() && !path.is_empty() {
                self.fields.push((path.clone(), l, c));
            }
            let k = key_text(key);
            let full = if path.is_empty() {
                k
            } else {
                format!("{path}.{k}")
            };
            self.fields.push((full, l, c));
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                let is_key = matches!(self.stack.last(), Some(Frame::Map { key: None, .. }));
                if self.doc_start.is_none() {
                    self.doc_start = Some(pos(&mark));
                }
                let value = scalar(text, style);
                if is_key {
                    self.note_key(&value, &mark);
                } else {
                    self.note(&mark);
                }
                if anchor > 0 {
                    self.anchors.push((anchor, value.clone(), 1));
                }
                self.attach(value);
            }
            Event::Alias(id) => {
                self.note(&mark);
                let found = self.anchors.iter().rev().find(|(a, _, _)| *a == id);
                let (value, nodes) = found.map(|(_, v, n)| (v, *n)).unwrap_or((&Value::Null, 1));
                self.alias_nodes = self.alias_nodes.saturating_add(nodes);
                let value = if self.alias_nodes > MAX_ALIAS_NODES {
                    // Keep parsing (for later syntax errors) but copy nothing more.
                    if self.alias_overflow.is_none() {
                        let (line, column) = pos(&mark);
                        self.alias_overflow = Some(AliasOverflow {
                            line,
                            column,
                            docs_before: self.docs.len(),
                        });
                    }
                    Value::Null
                } else {
                    value.clone()
                };
                self.attach(value);
            }
            Event::MappingStart(anchor, _) => {
                // A block mapping's start mark points past its first key: the first
                // key's own mark locates the mapping instead (see note_key).
                if self.doc_start.is_none() {
                    self.doc_start = Some(pos(&mark));
                }
                let path = self.child_path().unwrap_or_default();
                self.open_anchors.push(anchor);
                self.stack.push(Frame::Map {
                    map: Mapping::new(),
                    key: None,
                    path,
                });
            }
            Event::SequenceStart(anchor, _) => {
                self.note(&mark);
                let path = self.child_path().unwrap_or_default();
                self.open_anchors.push(anchor);
                self.stack.push(Frame::Seq {
                    seq: Vec::new(),
                    path,
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let value = match self.stack.pop() {
                    Some(Frame::Map { map, .. }) => Value::Mapping(map),
                    Some(Frame::Seq { seq, .. }) => Value::Sequence(seq),
                    None => Value::Null,
                };
                if let Some(anchor) = self.open_anchors.pop() {
                    if anchor > 0 {
                        let nodes = node_count(&value);
                        self.anchors.push((anchor, value.clone(), nodes));
                    }
                }
                self.attach(value);
            }
            Event::DocumentEnd => {
                self.stack.clear();
                self.fields.clear();
                self.doc_start = None;
            }
            _ => {}
        }
    }
}

fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => "?".to_string(),
    }
}

/// YAML 1.2 core-schema resolution of plain scalars; quoted scalars are strings.
fn scalar(text: String, style: TScalarStyle) -> Value {
    if style != TScalarStyle::Plain {
        return Value::String(text);
    }
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Value::Number(Number::from(i));
    }
    if let Ok(u) = text.parse::<u64>() {
        return Value::Number(Number::from(u));
    }
    if let Some(hex) = text.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Value::Number(Number::from(i));
        }
    }
    let looks_numeric = text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
        && text.bytes().any(|b| b.is_ascii_digit());
    if looks_numeric {
        if let Ok(f) = text.parse::<f64>() {
            return Value::Number(Number::from(f));
        }
    }
    match text.as_str() {
        ".inf" | ".Inf" | "+.inf" => Value::Number(Number::from(f64::INFINITY)),
        "-.inf" | "-.Inf" => Value::Number(Number::from(f64::NEG_INFINITY)),
        _ => Value::String(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_field_lines_across_documents() {
        let text = "a: 1\n---\nkind: X\nspec:\n  http:\n  - route:\n    - weight: ten\n";
        let (docs, err) = parse_documents(text);
        assert!(err.is_none());
        assert_eq!(docs.len(), 2);
        let find = |d: &Document, p: &str| d.fields.iter().find(|f| f.0 == p).map(|f| (f.1, f.2));
        assert_eq!(find(&docs[1], "kind"), Some((3, 1)));
        assert_eq!(find(&docs[1], "spec.http[0]"), Some((6, 5)));
        assert_eq!(find(&docs[1], "spec.http[0].route[0].weight"), Some((7, 7)));
        assert_eq!(docs[1].line, 3);
        assert_eq!(
            docs[1].value["spec"]["http"][0]["route"][0]["weight"],
            Value::String("ten".into())
        );
    }

    #[test]
    fn resolves_scalars_like_yaml_1_2() {
        let (docs, _) = parse_documents("a: 10\nb: '10'\nc: 0.5\nd: true\ne: ~\nf: 1.2.3\ng: -3\n");
        let v = &docs[0].value;
        assert_eq!(v["a"], Value::Number(10.into()));
        assert_eq!(v["b"], Value::String("10".into()));
        assert_eq!(v["c"].as_f64(), Some(0.5));
        assert_eq!(v["d"], Value::Bool(true));
        assert_eq!(v["e"], Value::Null);
        assert_eq!(v["f"], Value::String("1.2.3".into()));
        assert_eq!(v["g"].as_i64(), Some(-3));
    }

    #[test]
    fn syntax_error_has_position_and_keeps_earlier_documents() {
        let (docs, err) = parse_documents("a: 1\n---\nb: [1, 2\n");
        assert_eq!(docs.len(), 1);
        let err = err.expect("syntax error");
        assert!(err.line >= 3, "{err:?}");
    }

    #[test]
    fn aliases_copy_anchored_values() {
        let (docs, _) = parse_documents("x: &h {a: 1}\ny: *h\n");
        assert_eq!(docs[0].value["y"]["a"], Value::Number(1.into()));
    }

    #[test]
    fn alias_bombs_stop_with_an_error_instead_of_exhausting_memory() {
        let mut text = String::from("---\na: 1\n---\nl0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let refs = vec![format!("*l{}", i - 1); 10].join(", ");
            text += &format!("l{i}: &l{i} [{refs}]\n");
        }
        let (docs, err) = parse_documents(&text);
        assert_eq!(docs.len(), 1, "the document before the bomb stays");
        let err = err.expect("an error");
        assert!(err.message.contains("aliases here expand"), "{err:?}");
        assert!(err.line >= 6, "{err:?}");
        // Ordinary reuse is fine.
        let (docs, err) = parse_documents("d: &d {a: 1, b: [1, 2]}\ne: *d\nf: *d\n");
        assert!(err.is_none());
        assert_eq!(docs[0].value["f"]["b"][1], Value::Number(2.into()));
    }

    #[test]
    fn empty_documents_are_skipped() {
        let (docs, _) = parse_documents("---\n---\na: 1\n---\n");
        assert_eq!(docs.len(), 1);
    }
}
