//! The one reader of request parameters, for the vendor API and the
//! console's forms (vendor API A.4, D-6, F.4): the query string, then a
//! url-encoded or multipart body, the body winning; the last of a repeated
//! name wins except for `name[]` arrays; values that are not UTF-8 are read
//! as GB18030 (or the body's declared charset); code points XML can't carry
//! are dropped. Uploaded files are streamed to temporary files, within
//! limits. What is wrong is a [`ParamError`], which each interface words
//! its own way.

use std::collections::HashMap;
use std::path::Path;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use encoding_rs::{Encoding, GB18030, UTF_8};
use tokio::io::AsyncWriteExt;

use super::text::xml_chars;

/// Why a request's parameters can't be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamError {
    /// A required parameter is absent or empty; its name.
    Missing(String),
    /// A parameter is malformed; its name, or what is wrong.
    Invalid(String),
    /// The body is over the form limit.
    BodyTooLarge,
    /// An uploaded file is malformed or too large; what is wrong.
    File(String),
    /// The server could not keep an upload (a full disk).
    Internal(String),
}

impl ParamError {
    fn internal(e: impl std::fmt::Display) -> ParamError {
        ParamError::Internal(e.to_string())
    }
}

/// Largest body other than file parts (D-17).
pub const FORM_LIMIT: usize = 32 * 1024 * 1024;

/// A decoded value, or the fact that it could not be decoded (reported as
/// `invalid_param` when a handler asks for it).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Value {
    Text(String),
    Undecodable,
}

/// A file part of a multipart body, already on disk.
#[derive(Debug)]
pub struct Upload {
    /// The form field, without a trailing `[]`.
    pub field: String,
    pub file_name: String,
    pub content_type: Option<String>,
    pub size: u64,
    pub path: tempfile::TempPath,
}

#[derive(Debug, Default)]
pub struct Params {
    query: HashMap<String, Value>,
    body: HashMap<String, Value>,
    /// `name[]` values in order, query first then body, keyed without `[]`.
    arrays: HashMap<String, Vec<Value>>,
    pub uploads: Vec<Upload>,
    /// A body that could not be read: reported after authentication.
    pub body_error: Option<ParamError>,
}

/// Limits for reading one request.
pub struct Limits<'a> {
    pub form: usize,
    /// The largest file part.
    pub file: u64,
    /// The largest sum of all file parts.
    pub files: u64,
    pub tmp_dir: &'a Path,
}

impl Params {
    /// Reads the query string and the body.
    pub async fn read(query: Option<&str>, headers: &HeaderMap, body: Body, limits: &Limits<'_>) -> Params {
        let mut p = Params::default();
        if let Some(q) = query {
            for (name, value) in parse_urlencoded(q.as_bytes(), None) {
                p.insert(Source::Query, name, value);
            }
        }
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let mime = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "application/x-www-form-urlencoded" => {
                let charset = charset_of(&content_type);
                match axum::body::to_bytes(body, limits.form).await {
                    Ok(bytes) => {
                        for (name, value) in parse_urlencoded(&bytes, charset) {
                            p.insert(Source::Body, name, value);
                        }
                    }
                    Err(_) => p.body_error = Some(ParamError::BodyTooLarge),
                }
            }
            "multipart/form-data" => {
                if let Err(e) = p.read_multipart(&content_type, body, limits).await {
                    p.body_error = Some(e);
                }
            }
            _ => {}
        }
        p
    }

    async fn read_multipart(
        &mut self,
        content_type: &str,
        body: Body,
        limits: &Limits<'_>,
    ) -> Result<(), ParamError> {
        let bad = |what: &str| ParamError::File(what.to_string());
        let boundary = multer::parse_boundary(content_type).map_err(|_| bad("multipart boundary missing"))?;
        let mut mp = multer::Multipart::new(body.into_data_stream(), boundary);
        let mut form_bytes = 0usize;
        let mut file_bytes = 0u64;
        while let Some(mut field) = mp
            .next_field()
            .await
            .map_err(|_| bad("malformed multipart body"))?
        {
            let raw_name = field.name().unwrap_or("").to_string();
            let part_type = field.content_type().map(|m| m.to_string());
            match field.file_name().map(str::to_string) {
                Some(file_name) => {
                    let field_name = raw_name.strip_suffix("[]").unwrap_or(&raw_name).to_string();
                    tokio::fs::create_dir_all(limits.tmp_dir)
                        .await
                        .map_err(ParamError::internal)?;
                    let tmp =
                        tempfile::NamedTempFile::new_in(limits.tmp_dir).map_err(ParamError::internal)?;
                    let (std_file, path) = tmp.into_parts();
                    let mut file = tokio::fs::File::from_std(std_file);
                    let mut size = 0u64;
                    while let Some(chunk) = field.chunk().await.map_err(|_| bad("upload interrupted"))? {
                        size += chunk.len() as u64;
                        file_bytes += chunk.len() as u64;
                        let too_large = if size > limits.file {
                            Some(bad(&format!("{file_name}: file too large")))
                        } else if file_bytes > limits.files {
                            Some(bad("files too large together"))
                        } else {
                            None
                        };
                        if let Some(e) = too_large {
                            drain(field, mp).await;
                            return Err(e);
                        }
                        file.write_all(&chunk).await.map_err(ParamError::internal)?;
                    }
                    file.flush().await.map_err(ParamError::internal)?;
                    self.uploads.push(Upload {
                        field: field_name,
                        file_name: xml_chars(&file_name).into_owned(),
                        content_type: part_type,
                        size,
                        path,
                    });
                }
                None => {
                    let mut buf = Vec::new();
                    while let Some(chunk) =
                        field.chunk().await.map_err(|_| bad("malformed multipart body"))?
                    {
                        form_bytes += chunk.len();
                        if form_bytes > limits.form {
                            drain(field, mp).await;
                            return Err(ParamError::BodyTooLarge);
                        }
                        buf.extend_from_slice(&chunk);
                    }
                    let charset = part_type.as_deref().and_then(charset_of);
                    let name = decode_text(raw_name.as_bytes(), None);
                    if let Value::Text(name) = name {
                        self.insert(Source::Body, name, decode_text(&buf, charset));
                    }
                }
            }
        }
        Ok(())
    }

    fn insert(&mut self, source: Source, name: String, value: Value) {
        if let Some(array) = name.strip_suffix("[]") {
            self.arrays.entry(array.to_string()).or_default().push(value);
            return;
        }
        match source {
            Source::Query => self.query.insert(name, value),
            Source::Body => self.body.insert(name, value),
        };
    }

    fn lookup(&self, name: &str) -> Option<&Value> {
        self.body.get(name).or_else(|| self.query.get(name))
    }

    /// The value as sent, untrimmed, empty included: for the fields where an
    /// empty value clears (A.4 rule 8) and for `content`-like fields.
    pub fn raw(&self, name: &str) -> Result<Option<&str>, ParamError> {
        match self.lookup(name) {
            None => Ok(None),
            Some(Value::Text(s)) => Ok(Some(s)),
            Some(Value::Undecodable) => Err(ParamError::Invalid(name.to_string())),
        }
    }

    /// A scalar: trimmed; empty counts as absent (A.4 rules 8, 9).
    pub fn get(&self, name: &str) -> Result<Option<&str>, ParamError> {
        Ok(self.raw(name)?.map(str::trim).filter(|s| !s.is_empty()))
    }

    /// The first of several spellings that has a value (F.4): the canonical
    /// name first.
    pub fn get_any(&self, names: &[&str]) -> Result<Option<&str>, ParamError> {
        for n in names {
            if let Some(v) = self.get(n)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// A required scalar: `missing_param` when absent or empty.
    pub fn require(&self, name: &str) -> Result<&str, ParamError> {
        self.get(name)?
            .ok_or_else(|| ParamError::Missing(name.to_string()))
    }

    /// An id: decimal digits that fit 64 bits (D-4, D-14); `None` when absent.
    pub fn id(&self, name: &str) -> Result<Option<i64>, ParamError> {
        match self.get(name)? {
            None => Ok(None),
            Some(v) if v.bytes().all(|b| b.is_ascii_digit()) => v
                .parse()
                .map(Some)
                .map_err(|_| ParamError::Invalid(name.to_string())),
            Some(_) => Err(ParamError::Invalid(name.to_string())),
        }
    }

    /// A required id: `missing_param` when absent, `invalid_param` when malformed.
    pub fn require_id(&self, name: &str) -> Result<i64, ParamError> {
        self.id(name)?
            .ok_or_else(|| ParamError::Missing(name.to_string()))
    }

    /// `page` and `limit` as A.8 and H-9 read them: `page` (from 1) only if
    /// sent; a non-number or a value below 1 falls back to 1 and to the
    /// default limit; no upper bound.
    pub fn paging(&self, default_limit: i64) -> Result<(Option<i64>, i64), ParamError> {
        let number = |v: Option<&str>| v.and_then(|s| s.parse::<i64>().ok()).filter(|n| *n >= 1);
        let page = self.get("page")?.map(|p| number(Some(p)).unwrap_or(1));
        let limit = number(self.get("limit")?).unwrap_or(default_limit);
        Ok((page, limit))
    }

    /// An untrimmed free-text value (`content`, `ml_addr` …); empty is absent.
    pub fn untrimmed(&self, name: &str) -> Result<Option<&str>, ParamError> {
        Ok(self.raw(name)?.filter(|s| !s.is_empty()))
    }

    /// Whether a name was sent at all, even empty.
    pub fn is_present(&self, name: &str) -> bool {
        self.lookup(name).is_some()
    }

    /// The values of `name[]`, plus a plain `name` after them.
    pub fn array(&self, name: &str) -> Result<Vec<&str>, ParamError> {
        let mut out = Vec::new();
        for v in self.arrays.get(name).into_iter().flatten() {
            match v {
                Value::Text(s) => out.push(s.as_str()),
                Value::Undecodable => return Err(ParamError::Invalid(name.to_string())),
            }
        }
        if let Some(s) = self.raw(name)? {
            out.push(s);
        }
        Ok(out)
    }

    /// A credential or `do`: from the query string, else from the body
    /// (A.4 rule 1). Trimmed, empty is absent, undecodable is absent.
    pub fn auth_field(&self, name: &str) -> Option<&str> {
        fn pick<'a>(m: &'a HashMap<String, Value>, name: &str) -> Option<&'a str> {
            match m.get(name) {
                Some(Value::Text(s)) => Some(s.trim()).filter(|s| !s.is_empty()),
                _ => None,
            }
        }
        pick(&self.query, name).or_else(|| pick(&self.body, name))
    }

    /// For tests and tools: build from pairs as if they came in the query.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Params {
        let mut p = Params::default();
        for (n, v) in pairs {
            p.insert(Source::Query, n.to_string(), Value::Text(v.to_string()));
        }
        p
    }
}

/// Reads and drops the rest of a body that broke a limit, so the client
/// can finish sending and read the answer instead of seeing its upload cut
/// off. Gives up past [`DRAIN_LIMIT`]: then the connection is closed.
async fn drain(mut field: multer::Field<'static>, mut mp: multer::Multipart<'static>) {
    let mut drained = 0usize;
    loop {
        while let Ok(Some(chunk)) = field.chunk().await {
            drained += chunk.len();
            if drained > DRAIN_LIMIT {
                return;
            }
        }
        match mp.next_field().await {
            Ok(Some(next)) => field = next,
            _ => return,
        }
    }
}

/// The most of a refused body that is read to let its sender finish.
const DRAIN_LIMIT: usize = 256 * 1024 * 1024;

#[derive(Clone, Copy)]
enum Source {
    Query,
    Body,
}

/// The encoding a `charset=` parameter names, if any.
fn charset_of(content_type: &str) -> Option<&'static Encoding> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if k.trim().eq_ignore_ascii_case("charset") {
            Encoding::for_label(v.trim().trim_matches('"').as_bytes())
        } else {
            None
        }
    })
}

/// `a=1&b=%E4%B8%AD+x` into decoded pairs; `+` is a space; a name without `=`
/// has an empty value.
fn parse_urlencoded(input: &[u8], charset: Option<&'static Encoding>) -> Vec<(String, Value)> {
    input
        .split(|b| *b == b'&')
        .filter(|part| !part.is_empty())
        .filter_map(|part| {
            let (name, value) = match part.iter().position(|b| *b == b'=') {
                Some(i) => (&part[..i], &part[i + 1..]),
                None => (part, &b""[..]),
            };
            let name = match decode_text(&percent_decode(name), charset) {
                Value::Text(n) if !n.is_empty() => n,
                _ => return None,
            };
            Some((name, decode_text(&percent_decode(value), charset)))
        })
        .collect()
}

fn percent_decode(input: &[u8]) -> Vec<u8> {
    let plus_as_space: Vec<u8> = input.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
    percent_encoding::percent_decode(&plus_as_space).collect()
}

/// Bytes to text: the declared charset, else UTF-8, else GB18030 (D-6).
fn decode_text(bytes: &[u8], charset: Option<&'static Encoding>) -> Value {
    let decoded = match charset {
        Some(enc) if enc != UTF_8 => enc.decode_without_bom_handling_and_without_replacement(bytes),
        _ => match std::str::from_utf8(bytes) {
            Ok(s) => Some(std::borrow::Cow::Borrowed(s)),
            Err(_) => GB18030.decode_without_bom_handling_and_without_replacement(bytes),
        },
    };
    match decoded {
        Some(s) => Value::Text(xml_chars(&s).into_owned()),
        None => Value::Undecodable,
    }
}

/// Reads a whole body for tests of the reader.
#[cfg(test)]
async fn read_for_test(query: Option<&str>, content_type: &str, body: impl Into<bytes::Bytes>) -> Params {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, content_type.parse().unwrap());
    let dir = std::env::temp_dir();
    let limits = Limits {
        form: FORM_LIMIT,
        file: 1 << 20,
        files: 3 << 20,
        tmp_dir: &dir,
    };
    Params::read(query, &headers, Body::from(body.into()), &limits).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn body_wins_over_query_and_last_repeat_wins() {
        let p = read_for_test(
            Some("username=u&name=fromquery&a=1&a=2"),
            "application/x-www-form-urlencoded",
            "name=frombody&a=3",
        )
        .await;
        assert_eq!(p.get("name").unwrap(), Some("frombody"));
        assert_eq!(p.get("a").unwrap(), Some("3"));
        assert_eq!(p.get("username").unwrap(), Some("u"));
    }

    #[tokio::test]
    async fn credentials_prefer_the_query_string() {
        let p = read_for_test(
            Some("username=inquery"),
            "application/x-www-form-urlencoded",
            "username=inbody&password=pw",
        )
        .await;
        assert_eq!(p.auth_field("username"), Some("inquery"));
        assert_eq!(p.auth_field("password"), Some("pw"));
        assert_eq!(p.auth_field("do"), None);
    }

    #[tokio::test]
    async fn plus_is_space_empty_is_absent_and_values_are_trimmed() {
        let p = read_for_test(
            Some("time=2012-07-31+12%3A00&e=&s=+%20x%20+&flag"),
            "text/plain",
            "ignored=1",
        )
        .await;
        assert_eq!(p.get("time").unwrap(), Some("2012-07-31 12:00"));
        assert_eq!(p.get("e").unwrap(), None);
        assert!(p.is_present("e"));
        assert_eq!(p.raw("e").unwrap(), Some(""));
        assert_eq!(p.get("s").unwrap(), Some("x"));
        assert_eq!(p.untrimmed("s").unwrap(), Some("  x  "));
        assert!(p.is_present("flag"));
        // Bodies of other content types are ignored.
        assert_eq!(p.get("ignored").unwrap(), None);
    }

    #[tokio::test]
    async fn aliases_take_the_canonical_name_first() {
        let p = read_for_test(None, "application/x-www-form-urlencoded", "descr%C4%ABption=B").await;
        assert_eq!(p.get_any(&["description", "descrīption"]).unwrap(), Some("B"));
        let p = read_for_test(
            None,
            "application/x-www-form-urlencoded",
            "descr%C4%ABption=B&description=A",
        )
        .await;
        assert_eq!(p.get_any(&["description", "descrīption"]).unwrap(), Some("A"));
    }

    #[tokio::test]
    async fn gbk_values_are_read_and_garbage_is_invalid() {
        // "中文" in GBK is D6 D0 CE C4.
        let p = read_for_test(Some("name=%D6%D0%CE%C4"), "", "").await;
        assert_eq!(p.get("name").unwrap(), Some("中文"));
        let p = read_for_test(
            None,
            "application/x-www-form-urlencoded; charset=GBK",
            "name=%D6%D0%CE%C4",
        )
        .await;
        assert_eq!(p.get("name").unwrap(), Some("中文"));
        let p = read_for_test(Some("name=%E4%B8%AD%E6%96%87"), "", "").await;
        assert_eq!(p.get("name").unwrap(), Some("中文"));
        // 0xFF is neither UTF-8 nor GB18030.
        let p = read_for_test(Some("name=%FF"), "", "").await;
        assert_eq!(p.get("name").unwrap_err(), ParamError::Invalid("name".into()));
    }

    #[test]
    fn ids_and_paging() {
        let p = Params::from_pairs(&[
            ("id", "42"),
            ("bad", "-1"),
            ("big", "99999999999999999999"),
            ("page", "x"),
        ]);
        assert_eq!(p.require_id("id").unwrap(), 42);
        assert_eq!(
            p.require_id("none").unwrap_err(),
            ParamError::Missing("none".into())
        );
        assert_eq!(p.id("bad").unwrap_err(), ParamError::Invalid("bad".into()));
        assert_eq!(p.id("big").unwrap_err(), ParamError::Invalid("big".into()));
        assert_eq!(p.paging(50).unwrap(), (Some(1), 50));
        let p = Params::from_pairs(&[("page", "3"), ("limit", "0")]);
        assert_eq!(p.paging(30).unwrap(), (Some(3), 30));
        let p = Params::from_pairs(&[("limit", "5000")]);
        assert_eq!(p.paging(50).unwrap(), (None, 5000));
    }

    #[tokio::test]
    async fn control_characters_are_dropped() {
        let p = read_for_test(Some("name=a%00b%0Bc"), "", "").await;
        assert_eq!(p.get("name").unwrap(), Some("abc"));
    }

    #[tokio::test]
    async fn multipart_fields_arrays_and_files() {
        let body = "--XX\r\n\
            Content-Disposition: form-data; name=\"name\"\r\n\r\n\
            模板\r\n\
            --XX\r\n\
            Content-Disposition: form-data; name=\"ml_addr[]\"\r\n\r\n\
            a@b.cn\r\n\
            --XX\r\n\
            Content-Disposition: form-data; name=\"ml_addr[]\"\r\n\r\n\
            c@d.cn\r\n\
            --XX\r\n\
            Content-Disposition: form-data; name=\"file[]\"; filename=\"报价.pdf\"\r\n\
            Content-Type: application/pdf\r\n\r\n\
            %PDF-1.4 \x01\x02\r\n\
            --XX--\r\n";
        let p = read_for_test(Some("name=q"), "multipart/form-data; boundary=XX", body).await;
        assert!(p.body_error.is_none());
        assert_eq!(p.get("name").unwrap(), Some("模板"));
        assert_eq!(p.array("ml_addr").unwrap(), vec!["a@b.cn", "c@d.cn"]);
        assert_eq!(p.uploads.len(), 1);
        let up = &p.uploads[0];
        assert_eq!((up.field.as_str(), up.file_name.as_str()), ("file", "报价.pdf"));
        assert_eq!(std::fs::read(&up.path).unwrap(), b"%PDF-1.4 \x01\x02");
        assert_eq!(up.content_type.as_deref(), Some("application/pdf"));
    }

    #[tokio::test]
    async fn a_broken_multipart_body_is_a_file_error_but_keeps_the_query() {
        let p = read_for_test(Some("username=u"), "multipart/form-data; boundary=XX", "garbage").await;
        assert!(matches!(p.body_error, Some(ParamError::File(_))));
        assert_eq!(p.auth_field("username"), Some("u"));
    }
}
