//! Tokens of a LaTeX-ish math answer.
//!
//! The lexer already drops what never changes a value — `$`, LaTeX spacing, `\left` and
//! `\right`, `\displaystyle`, `\boxed` (its braces remain as a group) — and maps Unicode
//! (`π √ × · − ∞ ° ∪ ²`) and command synonyms (`\dfrac`, `\tfrac` → `\frac`) to one token
//! each, so the parser sees one spelling per idea.

use super::MathError;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Tok<'a> {
    /// Digits, with thousands commas / `{,}`, a decimal part and an exponent as written.
    Num(&'a str),
    /// A single ASCII letter.
    Ident(&'a str),
    /// A run of two or more ASCII letters.
    Word(&'a str),
    /// `\name`, normalized (`dfrac` → `frac`).
    Cmd(&'a str),
    /// The raw content of `\text{...}` and friends.
    Text(&'a str),
    LParen,
    RParen,
    LBrack,
    RBrack,
    LBrace,
    RBrace,
    LSet,
    RSet,
    Plus,
    Minus,
    Times,
    Slash,
    Caret,
    Underscore,
    Comma,
    Equals,
    Percent,
    Bang,
    Degree,
    Sqrt,
    Pi,
    Infinity,
    Cup,
    In,
    Pipe,
    /// A Unicode superscript digit (`²` → 2).
    Sup(u8),
    /// `<` (`true`) or `\le`, `≤` (`false`: not strict).
    Less(bool),
    /// `>` (`true`) or `\ge`, `≥` (`false`).
    Greater(bool),
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Token<'a> {
    pub tok: Tok<'a>,
    /// Whitespace came right before it (mixed numbers `1 1/2` need to know).
    pub space_before: bool,
    /// Byte offset in the input.
    pub at: usize,
}

const IGNORED_COMMANDS: &[&str] = &[
    "left",
    "right",
    "displaystyle",
    "textstyle",
    "boxed",
    "fbox",
    "quad",
    "qquad",
    "big",
    "Big",
    "bigg",
    "Bigg",
    "bigl",
    "bigr",
    "Bigl",
    "Bigr",
    "biggl",
    "biggr",
    "limits",
    "mathit",
    "mathbf",
    "bm",
    "boldsymbol",
    "hspace",
];
const TEXT_COMMANDS: &[&str] =
    &["text", "textbf", "textit", "textrm", "texttt", "mathrm", "mbox", "operatorname", "textnormal"];

pub(crate) fn lex(input: &str) -> Result<Vec<Token<'_>>, MathError> {
    let bytes = input.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut space = false;
    // Brackets open: thousands commas are only read outside them, where `1,234` cannot be a
    // tuple's separator.
    let mut bracket_depth = 0usize;
    while i < bytes.len() {
        let at = i;
        let c = input[i..].chars().next().expect("in bounds");
        let mut push = |tok, len: usize, i: &mut usize, space: &mut bool| {
            out.push(Token { tok, space_before: *space, at });
            *space = false;
            *i += len;
        };
        match c {
            ' ' | '\t' | '\n' | '\r' | '~' | '\u{a0}' | '\u{2009}' | '\u{202f}' => {
                space = true;
                i += c.len_utf8();
            }
            '$' => i += 1,
            '0'..='9' | '.' if c != '.' || bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let end = number_end(input, i, bracket_depth == 0);
                push(Tok::Num(&input[i..end]), end - i, &mut i, &mut space);
            }
            '.' => {
                // a full stop ends the answer; anything after it is an error
                if input[i + 1..].trim().is_empty() {
                    i = bytes.len();
                } else {
                    return Err(MathError::Unexpected { at, found: ".".into() });
                }
            }
            'a'..='z' | 'A'..='Z' => {
                let len = input[i..].find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(input.len() - i);
                let tok = if len == 1 { Tok::Ident(&input[i..i + 1]) } else { Tok::Word(&input[i..i + len]) };
                push(tok, len, &mut i, &mut space);
            }
            '\\' => {
                let name_len =
                    input[i + 1..].find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(input.len() - i - 1);
                if name_len == 0 {
                    // `\{`, `\}`, `\%`, `\$`, `\,` and other one-character escapes
                    let Some(next) = input[i + 1..].chars().next() else {
                        return Err(MathError::Unexpected { at, found: "\\".into() });
                    };
                    let len = 1 + next.len_utf8();
                    match next {
                        '{' => {
                            bracket_depth += 1;
                            push(Tok::LSet, len, &mut i, &mut space)
                        }
                        '}' => {
                            bracket_depth = bracket_depth.saturating_sub(1);
                            push(Tok::RSet, len, &mut i, &mut space)
                        }
                        '%' => push(Tok::Percent, len, &mut i, &mut space),
                        '$' | ',' | ';' | ':' | '!' | ' ' | '>' => {
                            space = true;
                            i += len;
                        }
                        _ => return Err(MathError::Unexpected { at, found: format!("\\{next}") }),
                    }
                    continue;
                }
                let name = &input[i + 1..i + 1 + name_len];
                let len = 1 + name_len;
                if IGNORED_COMMANDS.contains(&name) {
                    i += len;
                    // `\left.` and `\right.` are invisible delimiters
                    if matches!(name, "left" | "right") && bytes.get(i) == Some(&b'.') {
                        i += 1;
                    }
                    continue;
                }
                if TEXT_COMMANDS.contains(&name) {
                    let open = i + len + (input[i + len..].len() - input[i + len..].trim_start().len());
                    if bytes.get(open) != Some(&b'{') {
                        return Err(MathError::Unexpected { at, found: format!("\\{name} without braces") });
                    }
                    let inner = crate::extract::brace_group(input, open)
                        .ok_or(MathError::Unexpected { at, found: format!("unclosed \\{name}{{") })?;
                    let end = inner.end + 1;
                    push(Tok::Text(&input[inner]), end - i, &mut i, &mut space);
                    continue;
                }
                let tok = match name {
                    "frac" | "dfrac" | "tfrac" | "cfrac" => Tok::Cmd("frac"),
                    "lbrace" => {
                        bracket_depth += 1;
                        Tok::LSet
                    }
                    "rbrace" => {
                        bracket_depth = bracket_depth.saturating_sub(1);
                        Tok::RSet
                    }
                    "cdot" | "times" | "ast" => Tok::Times,
                    "div" => Tok::Slash,
                    "circ" | "degree" => Tok::Degree,
                    "pi" => Tok::Pi,
                    "infty" | "infin" => Tok::Infinity,
                    "cup" => Tok::Cup,
                    "in" => Tok::In,
                    "sqrt" => Tok::Cmd("sqrt"),
                    "vert" | "lvert" | "rvert" | "mid" => Tok::Pipe,
                    "lt" => Tok::Less(true),
                    "le" | "leq" | "leqslant" => Tok::Less(false),
                    "gt" => Tok::Greater(true),
                    "ge" | "geq" | "geqslant" => Tok::Greater(false),
                    "dbinom" | "tbinom" => Tok::Cmd("binom"),
                    _ => Tok::Cmd(name),
                };
                push(tok, len, &mut i, &mut space);
            }
            _ => {
                let tok = match c {
                    '(' => {
                        bracket_depth += 1;
                        Tok::LParen
                    }
                    ')' => {
                        bracket_depth = bracket_depth.saturating_sub(1);
                        Tok::RParen
                    }
                    '[' => {
                        bracket_depth += 1;
                        Tok::LBrack
                    }
                    ']' => {
                        bracket_depth = bracket_depth.saturating_sub(1);
                        Tok::RBrack
                    }
                    '{' => Tok::LBrace,
                    '}' => Tok::RBrace,
                    '+' => Tok::Plus,
                    '-' | '−' | '–' => Tok::Minus,
                    '*' | '×' | '·' | '⋅' => Tok::Times,
                    '/' | '÷' => Tok::Slash,
                    '^' => Tok::Caret,
                    '_' => Tok::Underscore,
                    ',' => Tok::Comma,
                    '=' => Tok::Equals,
                    '%' => Tok::Percent,
                    '!' => Tok::Bang,
                    '°' => Tok::Degree,
                    '√' => Tok::Sqrt,
                    'π' => Tok::Pi,
                    '∞' => Tok::Infinity,
                    '∪' => Tok::Cup,
                    '∈' => Tok::In,
                    '|' => Tok::Pipe,
                    '<' if bytes.get(i + 1) == Some(&b'=') => {
                        push(Tok::Less(false), 2, &mut i, &mut space);
                        continue;
                    }
                    '>' if bytes.get(i + 1) == Some(&b'=') => {
                        push(Tok::Greater(false), 2, &mut i, &mut space);
                        continue;
                    }
                    '<' => Tok::Less(true),
                    '>' => Tok::Greater(true),
                    '≤' => Tok::Less(false),
                    '≥' => Tok::Greater(false),
                    '²' => Tok::Sup(2),
                    '³' => Tok::Sup(3),
                    _ => return Err(MathError::Unexpected { at, found: c.to_string() }),
                };
                push(tok, c.len_utf8(), &mut i, &mut space);
            }
        }
    }
    Ok(out)
}

/// The end of the number starting at `start`: digits; with `thousands`, `,ddd` groups
/// after a leading group of at most three digits; `{,}ddd` groups always; a decimal part;
/// an exponent `e±d` not followed by a letter.
fn number_end(input: &str, start: usize, thousands: bool) -> usize {
    let b = input.as_bytes();
    let digit = |k: usize| b.get(k).is_some_and(u8::is_ascii_digit);
    let mut j = start;
    while digit(j) {
        j += 1;
    }
    let lead = j - start;
    if lead > 0 && lead <= 3 {
        loop {
            let sep = if thousands && b.get(j) == Some(&b',') {
                1
            } else if input[j..].starts_with("{,}") {
                3
            } else {
                break;
            };
            if digit(j + sep) && digit(j + sep + 1) && digit(j + sep + 2) && !digit(j + sep + 3) {
                j += sep + 3;
            } else {
                break;
            }
        }
    }
    if b.get(j) == Some(&b'.') && digit(j + 1) {
        j += 1;
        while digit(j) {
            j += 1;
        }
    }
    if matches!(b.get(j), Some(b'e' | b'E')) {
        let mut k = j + 1;
        if matches!(b.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        if digit(k) {
            while digit(k) {
                k += 1;
            }
            if !b.get(k).is_some_and(u8::is_ascii_alphabetic) {
                j = k;
            }
        }
    }
    j
}
