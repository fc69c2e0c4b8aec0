//! JSON array → JSON Lines, in a stream: a document that is one JSON array of rows (an Ads v3
//! report) becomes one element per line, which query engines read as rows (Athena's JSON SerDe reads
//! one object per line, never an array).
//!
//! Whitespace outside strings is dropped (a pretty-printed element becomes one line; a newline can
//! only appear inside a JSON string escaped, so none is left inside an element), each element ends
//! with `\n`, and the brackets go. Anything but one array, or an array cut short, is a
//! [`DecodeError::NotAsDeclared`]: the document is not what the source promised.

use std::io::{self, Read};

use crate::domain::document::DecodeError;

const CHUNK: usize = 64 * 1024;

/// Reads a JSON array from `inner` and yields its elements as JSON Lines.
pub struct JsonArrayLines<R> {
    inner: R,
    input: Vec<u8>,
    output: Vec<u8>,
    served: usize,
    state: State,
    /// Nesting inside the array: 0 between elements, more inside one.
    depth: u32,
    strings: JsonStrings,
    /// Bytes of the current element written so far.
    element: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the opening `[`.
    Before,
    /// Inside the array.
    Inside,
    /// After the closing `]`.
    After,
}

/// Whether JSON text is inside a string literal, tracked byte by byte (escapes honoured), so that
/// brackets, commas and whitespace inside strings are not taken for structure.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct JsonStrings {
    in_string: bool,
    escaped: bool,
}

impl JsonStrings {
    /// Takes `b` when a string is open: `true` then (its closing quote included); `false` outside.
    pub(crate) fn inside(&mut self, b: u8) -> bool {
        if !self.in_string {
            return false;
        }
        match (self.escaped, b) {
            (true, _) => self.escaped = false,
            (false, b'\\') => self.escaped = true,
            (false, b'"') => self.in_string = false,
            _ => {}
        }
        true
    }

    /// A string opens (at its opening quote, outside a string).
    pub(crate) fn open(&mut self) {
        self.in_string = true;
    }
}

fn invalid(problem: &'static str) -> io::Error {
    io::Error::other(DecodeError::NotAsDeclared {
        expected: "a JSON array of rows",
        problem,
    })
}

impl<R: Read> JsonArrayLines<R> {
    /// Converts the JSON array `inner` yields.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            input: vec![0; CHUNK],
            output: Vec::with_capacity(CHUNK),
            served: 0,
            state: State::Before,
            depth: 0,
            strings: JsonStrings::default(),
            element: false,
        }
    }

    fn end_element(&mut self) {
        if self.element {
            self.output.push(b'\n');
            self.element = false;
        }
    }

    fn convert(&mut self, n: usize) -> io::Result<()> {
        for i in 0..n {
            let b = self.input[i];
            if self.strings.inside(b) {
                self.output.push(b);
                continue;
            }
            if b.is_ascii_whitespace() {
                continue;
            }
            match self.state {
                State::Before if b == b'[' => self.state = State::Inside,
                State::Before => return Err(invalid("it does not start with `[`")),
                State::After => return Err(invalid("something follows the closing `]`")),
                State::Inside => match (self.depth, b) {
                    (0, b',') => {
                        if !self.element {
                            return Err(invalid("an element is missing before `,`"));
                        }
                        self.end_element();
                    }
                    (0, b']') => {
                        self.end_element();
                        self.state = State::After;
                    }
                    _ => {
                        match b {
                            b'"' => self.strings.open(),
                            b'[' | b'{' => self.depth += 1,
                            b']' | b'}' => {
                                self.depth = self
                                    .depth
                                    .checked_sub(1)
                                    .ok_or_else(|| invalid("a bracket closes nothing"))?;
                            }
                            _ => {}
                        }
                        self.output.push(b);
                        self.element = true;
                    }
                },
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for JsonArrayLines<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.served == self.output.len() {
            self.output.clear();
            self.served = 0;
            let n = self.inner.read(&mut self.input)?;
            if n == 0 {
                return match self.state {
                    State::After => Ok(0),
                    State::Before => Err(invalid("it is empty")),
                    State::Inside => Err(invalid("it ends before its closing `]`")),
                };
            }
            self.convert(n)?;
        }
        Ok(super::serve(&self.output, &mut self.served, buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &str) -> io::Result<String> {
        // One byte at a time, so that every state change falls on a read boundary somewhere.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let Some((&b, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                buf[0] = b;
                self.0 = rest;
                Ok(1)
            }
        }
        let mut out = String::new();
        JsonArrayLines::new(Trickle(input.as_bytes())).read_to_string(&mut out)?;
        Ok(out)
    }

    #[test]
    fn a_pretty_printed_array_of_rows_becomes_one_compact_row_per_line() {
        let input = "[\n  {\"date\": \"2026-11-22\", \"campaignName\": \"a, [b] {c}\", \"clicks\": 3},\n  {\"date\": \"2026-11-22\", \"nested\": {\"x\": [1, 2]}}\n]\n";
        assert_eq!(
            lines(input).expect("an array"),
            "{\"date\":\"2026-11-22\",\"campaignName\":\"a, [b] {c}\",\"clicks\":3}\n{\"date\":\"2026-11-22\",\"nested\":{\"x\":[1,2]}}\n"
        );
    }

    #[test]
    fn whitespace_and_escaped_quotes_inside_strings_are_kept() {
        let input = r#"[{"name": "say \"hi\"  there\\", "tab": "a\tb"}]"#;
        assert_eq!(
            lines(input).expect("an array"),
            "{\"name\":\"say \\\"hi\\\"  there\\\\\",\"tab\":\"a\\tb\"}\n"
        );
    }

    #[test]
    fn an_empty_array_has_no_lines() {
        assert_eq!(lines(" [ ] ").expect("an array"), "");
    }

    #[test]
    fn anything_but_one_complete_array_is_not_as_declared() {
        for input in [
            "",
            "{\"a\": 1}",
            "[{\"a\": 1}",
            "[{\"a\": 1}] x",
            "[,{\"a\": 1}]",
            "[{\"a\": 1}}]",
        ] {
            let err = lines(input).expect_err(input);
            let decode = err.get_ref().and_then(|e| e.downcast_ref::<DecodeError>());
            assert!(
                matches!(decode, Some(DecodeError::NotAsDeclared { .. })),
                "{input}: {err}"
            );
        }
    }
}
