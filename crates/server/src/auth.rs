//! Optional bearer-token authentication: the token list, its file format, and the
//! extractor that tells every `/v1` handler who is calling.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::error::{ApiError, ErrorCode, ServerError};
use crate::state::AppState;

/// The environment variable [`Tokens::from_env`] reads.
pub const TOKENS_ENV: &str = "GRISTMILL_TOKENS";

/// Shortest token accepted, in characters.
pub const MIN_TOKEN_LEN: usize = 16;
/// Longest token accepted, in characters.
pub const MAX_TOKEN_LEN: usize = 256;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything except gold answers: sample, score (without `eval: true`), and drive the
    /// sessions it created.
    Train,
    /// Everything a `train` token may, and also gold answers (`"eval": true` in a score
    /// request).
    Eval,
}

impl Role {
    /// The role as the token file spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Train => "train",
            Role::Eval => "eval",
        }
    }
}

/// Who owns a session or snapshot: `0` without authentication, else the token's position
/// in its list (from 1).
pub(crate) type Owner = u32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Grant {
    owner: Owner,
    role: Role,
}

/// The bearer tokens a server accepts, each with a [`Role`].
///
/// **Format** (a file for `--tokens FILE`, or the value of `GRISTMILL_TOKENS`): one entry
/// per line, `<role> <token>`, where the role is `train` or `eval` and the token is 16 to
/// 256 characters of `A-Z a-z 0-9 - . _ ~ + / =` (RFC 6750's `b64token`); blank lines and
/// lines starting with `#` are ignored, and in the environment variable a comma also ends
/// an entry. Every token must be distinct. For example:
///
/// ```text
/// # role  token
/// train   4f1c9a0e6b3d2f8a7c5e1b9d0a6f3c2e
/// eval    Zb9Yx8Wv7Ut6Sr5Qp4On3Ml2Kj1Ih0Gf
/// ```
///
/// Clients send `Authorization: Bearer <token>`. Sessions and snapshots belong to the token
/// that created them; any other token gets `404` for them, as if they did not exist.
/// Tokens are held only as BLAKE3 digests, and a request's token is looked up by digest,
/// so neither the list nor the lookup's timing reveals them.
#[derive(Clone, PartialEq)]
pub struct Tokens {
    by_digest: HashMap<[u8; 32], Grant>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("train", &self.count(Role::Train))
            .field("eval", &self.count(Role::Eval))
            .finish_non_exhaustive()
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '+' | '/' | '=')
}

impl Tokens {
    /// Parses the token format (see [`Tokens`]); `origin` names the source in errors, each
    /// of which gives the entry's line.
    pub fn parse(text: &str, origin: &str) -> Result<Tokens, ServerError> {
        let bad = |line: usize, why: String| ServerError::Tokens(format!("{origin}:{line}: {why}"));
        let mut by_digest = HashMap::new();
        let mut first_line: HashMap<[u8; 32], usize> = HashMap::new();
        let entries = text.lines().enumerate().flat_map(|(i, line)| line.split(',').map(move |e| (i + 1, e)));
        for (line, entry) in entries {
            let entry = entry.trim();
            if entry.is_empty() || entry.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = entry.split_whitespace().collect();
            let [role, token] = fields[..] else {
                return Err(bad(line, "expected `<role> <token>` (role `train` or `eval`)".into()));
            };
            let role = match role {
                "train" => Role::Train,
                "eval" => Role::Eval,
                other => {
                    return Err(bad(
                        line,
                        format!(
                            "unknown role `{}`; the roles are `train` and `eval`",
                            crate::error::clip(other)
                        ),
                    ))
                }
            };
            let len = token.chars().count();
            if !(MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&len) {
                return Err(bad(
                    line,
                    format!("a token must be {MIN_TOKEN_LEN} to {MAX_TOKEN_LEN} characters long; this one has {len}"),
                ));
            }
            if !token.chars().all(is_token_char) {
                return Err(bad(line, "a token may only contain A-Z a-z 0-9 - . _ ~ + / =".into()));
            }
            let digest = *blake3::hash(token.as_bytes()).as_bytes();
            if let Some(first) = first_line.insert(digest, line) {
                return Err(bad(line, format!("the same token is already listed on line {first}")));
            }
            let owner =
                Owner::try_from(by_digest.len() + 1).map_err(|_| bad(line, "too many tokens".to_string()))?;
            by_digest.insert(digest, Grant { owner, role });
        }
        if by_digest.is_empty() {
            return Err(ServerError::Tokens(format!("{origin}: no tokens (every request would be refused)")));
        }
        Ok(Tokens { by_digest })
    }

    /// Reads and parses a token file.
    pub fn load(path: &Path) -> Result<Tokens, ServerError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ServerError::Read { path: path.to_path_buf(), source })?;
        Tokens::parse(&text, &path.display().to_string())
    }

    /// The tokens in the environment variable `GRISTMILL_TOKENS`, if it is set.
    pub fn from_env() -> Result<Option<Tokens>, ServerError> {
        match std::env::var(TOKENS_ENV) {
            Ok(text) => Tokens::parse(&text, TOKENS_ENV).map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(ServerError::Tokens(format!("{TOKENS_ENV} is not valid UTF-8")))
            }
        }
    }

    /// `--tokens FILE` if given, else `GRISTMILL_TOKENS` if set, else no authentication:
    /// what the `serve` binaries do.
    pub fn from_file_or_env(file: Option<&Path>) -> Result<Option<Tokens>, ServerError> {
        match file {
            Some(path) => Tokens::load(path).map(Some),
            None => Tokens::from_env(),
        }
    }

    /// How many tokens have `role`.
    pub fn count(&self, role: Role) -> usize {
        self.by_digest.values().filter(|g| g.role == role).count()
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// Always false: a token list is never empty.
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    fn grant(&self, token: &str) -> Option<Grant> {
        self.by_digest.get(blake3::hash(token.as_bytes()).as_bytes()).copied()
    }
}

/// Who is calling: the owner id sessions are filed under, and the role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caller {
    pub owner: Owner,
    pub role: Role,
}

impl Caller {
    /// A caller of a server without authentication: owner 0, allowed everything.
    const ANONYMOUS: Caller = Caller { owner: 0, role: Role::Eval };

    /// Refuses a caller that may not see gold answers.
    pub fn require_gold(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Eval => Ok(()),
            Role::Train => Err(ApiError::new(
                ErrorCode::Forbidden,
                "this token's role is `train`, which may not see gold answers (`eval: true`); use an `eval` token",
            )),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(tokens) = &state.config().auth else {
            return Ok(Caller::ANONYMOUS);
        };
        let unauthorized = |why: &str| ApiError::new(ErrorCode::Unauthorized, why.to_string());
        let value = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| unauthorized("this server requires `Authorization: Bearer <token>`"))?;
        let value = value.to_str().map_err(|_| unauthorized("the Authorization header is not ASCII"))?;
        let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(unauthorized("the Authorization header must use the `Bearer` scheme"));
        }
        let grant =
            tokens.grant(token.trim()).ok_or_else(|| unauthorized("the bearer token is not valid"))?;
        Ok(Caller { owner: grant.owner, role: grant.role })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_files_parse_and_bad_ones_name_their_line() {
        let t = Tokens::parse(
            "# comment\n\ntrain aaaaaaaaaaaaaaaa\n  eval   bbbbbbbbbbbbbbbb/+=  \n",
            "tokens.txt",
        )
        .unwrap();
        assert_eq!((t.count(Role::Train), t.count(Role::Eval), t.len()), (1, 1, 2));
        assert_eq!(t.grant("aaaaaaaaaaaaaaaa"), Some(Grant { owner: 1, role: Role::Train }));
        assert_eq!(t.grant("bbbbbbbbbbbbbbbb/+="), Some(Grant { owner: 2, role: Role::Eval }));
        assert_eq!(t.grant("aaaaaaaaaaaaaaab"), None);
        assert!(!format!("{t:?}").contains("aaaa"), "Debug shows a token: {t:?}");

        let env = Tokens::parse("train cccccccccccccccc,eval dddddddddddddddd", TOKENS_ENV).unwrap();
        assert_eq!(env.len(), 2);

        for (text, needle) in [
            ("", "no tokens"),
            ("# only a comment", "no tokens"),
            ("admin aaaaaaaaaaaaaaaa", "tokens.txt:1: unknown role `admin`"),
            ("train\n", "tokens.txt:1: expected `<role> <token>`"),
            ("\ntrain a b", "tokens.txt:2: expected"),
            ("train short", "16 to 256 characters"),
            ("train aaaaaaaaaaaaaaa!", "may only contain"),
            (
                "train aaaaaaaaaaaaaaaa\neval aaaaaaaaaaaaaaaa",
                "tokens.txt:2: the same token is already listed on line 1",
            ),
        ] {
            let e = Tokens::parse(text, "tokens.txt").unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }
}
