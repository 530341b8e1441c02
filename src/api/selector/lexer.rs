//! The label selector query-string grammar: upstream's byte lexer and
//! recursive-descent parser (`labels.Parse`), down to its error texts,
//! because kubectl shows those texts to users verbatim.

use super::label::{key_error, new_requirement, Operator, Requirement};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    Error,
    End,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

/// Upstream's `binaryOperators` as shown in "expected:" messages.
const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

fn keyword(s: &[u8]) -> Option<Token> {
    Some(match s {
        b")" => Token::ClosedPar,
        b"," => Token::Comma,
        b"!" => Token::DoesNotExist,
        b"==" => Token::DoubleEquals,
        b"=" => Token::Equals,
        b">" => Token::GreaterThan,
        b"in" => Token::In,
        b"<" => Token::LessThan,
        b"!=" => Token::NotEquals,
        b"notin" => Token::NotIn,
        b"(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(c: u8) -> bool {
    matches!(c, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Splits the input into tokens. As upstream, a NUL byte ends a word or
/// operator and is consumed; one where a token would start ends the input.
fn lex(input: &str) -> Vec<(Token, String)> {
    let s = input.as_bytes();
    let mut pos = 0;
    let mut items = Vec::new();
    loop {
        while pos < s.len() && is_whitespace(s[pos]) {
            pos += 1;
        }
        let start = pos;
        let item = match s.get(pos) {
            None | Some(0) => (Token::End, String::new()),
            Some(&c) if is_special(c) => {
                // Longest run of special bytes that still forms a token.
                let mut best: Option<(Token, usize)> = None;
                while pos < s.len() && is_special(s[pos]) {
                    match keyword(&s[start..=pos]) {
                        Some(tok) => best = Some((tok, pos + 1)),
                        None if best.is_some() => break,
                        None => {}
                    }
                    pos += 1;
                }
                match best {
                    Some((tok, end)) => {
                        // Upstream consumes a NUL that stops the run.
                        pos = if s.get(end) == Some(&0) { end + 1 } else { end };
                        (tok, String::from_utf8_lossy(&s[start..end]).into_owned())
                    }
                    None => {
                        let found = String::from_utf8_lossy(&s[start..pos]);
                        (
                            Token::Error,
                            format!("error expected: keyword found '{found}'"),
                        )
                    }
                }
            }
            Some(_) => {
                while pos < s.len() && s[pos] != 0 && !is_special(s[pos]) && !is_whitespace(s[pos])
                {
                    pos += 1;
                }
                let word = &s[start..pos];
                if s.get(pos) == Some(&0) {
                    pos += 1;
                }
                let tok = keyword(word).unwrap_or(Token::Identifier);
                (tok, String::from_utf8_lossy(word).into_owned())
            }
        };
        let end = item.0 == Token::End;
        items.push(item);
        if end {
            return items;
        }
    }
}

struct Parser {
    items: Vec<(Token, String)>,
    position: usize,
}

impl Parser {
    /// In a values context "in" and "notin" are ordinary identifiers.
    fn peek(&self, values: bool) -> (Token, String) {
        let (tok, lit) = self
            .items
            .get(self.position)
            .cloned()
            .unwrap_or((Token::End, String::new()));
        match tok {
            Token::In | Token::NotIn if values => (Token::Identifier, lit),
            _ => (tok, lit),
        }
    }

    fn next(&mut self, values: bool) -> (Token, String) {
        let item = self.peek(values);
        self.position += 1;
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut reqs = Vec::new();
        loop {
            let (tok, lit) = self.peek(true);
            match tok {
                Token::Identifier | Token::DoesNotExist => {
                    let r = self
                        .requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    reqs.push(r);
                    let (t, l) = self.next(true);
                    match t {
                        Token::End => return Ok(reqs),
                        Token::Comma => {
                            let (t2, l2) = self.peek(true);
                            if t2 != Token::Identifier && t2 != Token::DoesNotExist {
                                return Err(format!(
                                    "found '{l2}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => return Err(format!("found '{l}', expected: ',' or 'end of string'")),
                    }
                }
                Token::End => return Ok(reqs),
                _ => {
                    return Err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    ))
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let (key, inferred) = self.key_and_inferred_operator()?;
        if let Some(op) = inferred {
            return new_requirement(&key, op, Vec::new(), true);
        }
        let op = self.operator()?;
        let values = match op {
            Operator::In | Operator::NotIn => self.value_set()?,
            _ => self.exact_value()?,
        };
        new_requirement(&key, op, values, true)
    }

    /// A key, optionally preceded by '!'; a bare key means Exists.
    fn key_and_inferred_operator(&mut self) -> Result<(String, Option<Operator>), String> {
        let (mut tok, mut lit) = self.next(true);
        let mut op = None;
        if tok == Token::DoesNotExist {
            op = Some(Operator::DoesNotExist);
            (tok, lit) = self.next(true);
        }
        if tok != Token::Identifier {
            return Err(format!("found '{lit}', expected: identifier"));
        }
        // Upstream validates with a nil field path, which prints as "<nil>".
        if let Some(e) = key_error(&lit, "<nil>") {
            return Err(e.summary());
        }
        let (t, _) = self.peek(true);
        if (t == Token::End || t == Token::Comma) && op.is_none() {
            op = Some(Operator::Exists);
        }
        Ok((lit, op))
    }

    fn operator(&mut self) -> Result<Operator, String> {
        let (tok, lit) = self.next(false);
        Ok(match tok {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => return Err(format!("found '{lit}', expected: {BINARY_OPERATORS}")),
        })
    }

    /// `(a,b,,c)`: a sorted set, where empty members are the empty string.
    fn value_set(&mut self) -> Result<Vec<String>, String> {
        let (tok, lit) = self.next(true);
        if tok != Token::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (tok, lit) = self.peek(true);
        let mut set = match tok {
            Token::Identifier | Token::Comma => {
                let set = self.identifiers()?;
                if self.next(true).0 != Token::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                set
            }
            Token::ClosedPar => {
                self.next(true);
                vec![String::new()]
            }
            _ => return Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        };
        set.sort();
        set.dedup();
        Ok(set)
    }

    fn identifiers(&mut self) -> Result<Vec<String>, String> {
        let mut set: Vec<String> = Vec::new();
        loop {
            let (tok, lit) = self.next(true);
            match tok {
                Token::Identifier => {
                    set.push(lit);
                    let (t2, l2) = self.peek(true);
                    match t2 {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(set),
                        _ => return Err(format!("found '{l2}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    // "(," ",," and ",)" all stand for an empty value.
                    if set.is_empty() {
                        set.push(String::new());
                    }
                    match self.peek(true).0 {
                        Token::ClosedPar => {
                            set.push(String::new());
                            return Ok(set);
                        }
                        Token::Comma => set.push(String::new()),
                        _ => {}
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    fn exact_value(&mut self) -> Result<Vec<String>, String> {
        let (tok, _) = self.peek(true);
        if tok == Token::End || tok == Token::Comma {
            return Ok(vec![String::new()]);
        }
        match self.next(true) {
            (Token::Identifier, lit) => Ok(vec![lit]),
            (_, lit) => Err(format!("found '{lit}', expected: identifier")),
        }
    }
}

/// Upstream `labels.Parse`: requirements sorted by key.
pub(super) fn parse(input: &str) -> Result<Vec<Requirement>, String> {
    let mut parser = Parser {
        items: lex(input),
        position: 0,
    };
    let mut reqs = parser.parse()?;
    reqs.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(reqs)
}
